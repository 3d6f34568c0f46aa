//! Archive sync: store-and-forward upload of recorded assets to Azure Blob Storage, S3 (or
//! S3-compatible) and directories, resumable, rate-limited, never in the way of live
//! (docs/design/sync.md).
//!
//! - The outbox is in the appliance database (edge-db `sync_jobs` / `sync_objects`). The API
//!   queues an asset when its live output is deleted or its live event stops; a live event
//!   tagged `{"edgeSync": "live"}` has its segments uploaded while it records.
//! - [`SyncService::spawn`] runs the worker on its own tokio task: it reads the recording index
//!   and files from disk (never the live pipeline), uploads through `object_store`, and stores
//!   each step (block / multipart upload id, committed parts) before the next.
//! - Sans-IO cores, unit-tested with time as an input: [`ratelimit`] (token bucket, daily
//!   unlimited window), [`backoff`] (exponential with jitter), [`resume`] (the per-object
//!   upload state machine), [`disk`] (the retention policy), [`keys`] (the object layout).

pub mod backoff;
pub mod disk;
pub mod http;
pub mod keys;
pub mod ratelimit;
pub mod resume;
pub mod target;
mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use edge_config::{Config, DailyWindow};
use edge_db::{Db, SyncJobRow};
use serde_json::{Value, json};

pub use worker::job_json;

/// Where a cap set at run time is kept (`meta` table).
const CAP_KEY: &str = "sync.upload-cap";

fn parse_cap(mbps: f64, unlimited_window: &str) -> Result<ratelimit::Schedule, String> {
    if !(mbps.is_finite() && (0.0..=100_000.0).contains(&mbps)) {
        return Err(format!("uploadMaxMbps must be 0 (no cap) to 100000 Mbit/s, not {mbps}"));
    }
    let unlimited = if unlimited_window.trim().is_empty() {
        None
    } else {
        Some(DailyWindow::parse(unlimited_window.trim()).map_err(|e| format!("uploadUnlimitedWindow: {e}"))?)
    };
    Ok(ratelimit::Schedule { mbps, unlimited })
}

fn stored_cap(db: &Db) -> Result<Option<ratelimit::Schedule>, String> {
    let Some(v) = db.meta_get(CAP_KEY).map_err(|e| e.to_string())? else { return Ok(None) };
    let v: Value = serde_json::from_str(&v).map_err(|e| e.to_string())?;
    let mbps = v["uploadMaxMbps"].as_f64().ok_or("no uploadMaxMbps")?;
    parse_cap(mbps, v["uploadUnlimitedWindow"].as_str().unwrap_or("")).map(Some)
}

/// The live event tag that turns on live upload: `{"edgeSync": "live"}`.
pub const LIVE_TAG: &str = "edgeSync";

/// The archive sync of the appliance: its targets, its worker, and what the API shows.
#[derive(Clone)]
pub struct SyncService {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Db>,
    assets_dir: PathBuf,
    targets: BTreeMap<String, (String, String)>,
    default_storage: String,
    shared: Arc<http::Shared>,
    wake: Arc<tokio::sync::Notify>,
    status: Arc<Mutex<worker::Status>>,
    worker: Mutex<Option<worker::Worker>>,
    /// Whether the cap in force was set at run time (kept in `meta`) rather than by the configuration.
    cap_set_at_run_time: std::sync::atomic::AtomicBool,
}

impl SyncService {
    /// Builds the targets of the configuration (nothing is contacted yet).
    pub fn new(
        cfg: &Config,
        db: Arc<Db>,
        assets_dir: PathBuf,
        gate: edge_record::RecordGate,
    ) -> Result<SyncService, String> {
        let window = if cfg.upload_unlimited_window.is_empty() {
            None
        } else {
            Some(DailyWindow::parse(&cfg.upload_unlimited_window)?)
        };
        let mut schedule = ratelimit::Schedule { mbps: cfg.upload_max_mbps, unlimited: window };
        // A cap set from the console (PUT /edge/v1/sync/settings) outlives restarts and wins over
        // the configuration's; request timeouts keep following the configured cap (a guess at the
        // link's speed), as a lower cap only spaces requests out.
        let mut cap_set = false;
        match stored_cap(&db) {
            Ok(Some(s)) => {
                schedule = s;
                cap_set = true;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("the upload cap set from the console is unreadable, using the configured one: {e}")
            }
        }
        let shared = http::Shared::new(ratelimit::Limiter::new(schedule));
        let part_size = cfg.upload_part_size_kib * 1024;
        let cap = schedule.bytes_per_sec(12 * 60).or(schedule.bytes_per_sec(0));
        let mut targets = BTreeMap::new();
        let mut info = BTreeMap::new();
        for (name, t) in &cfg.storage {
            let target = target::Target::build(name, t, shared.clone(), http::client_options(part_size, cap))?;
            info.insert(name.clone(), (target.kind.clone(), target.base_url.clone()));
            targets.insert(name.clone(), target);
        }
        let wake = Arc::new(tokio::sync::Notify::new());
        let status = Arc::new(Mutex::new(worker::Status::default()));
        let w = worker::Worker {
            db: db.clone(),
            assets_dir: assets_dir.clone(),
            targets,
            shared: shared.clone(),
            part_size,
            backoff: backoff::Backoff::default(),
            // Without any storage target nothing can become synced: there is nothing the policy
            // could ever free, and recordings stay the operator's to delete (as without sync).
            disk_min_free_percent: if cfg.storage.is_empty() { 0.0 } else { cfg.disk_min_free_percent },
            live_tag: LIVE_TAG.into(),
            default_storage: cfg.default_storage.clone(),
            gate,
            wake: wake.clone(),
            status: status.clone(),
            watermarks: Mutex::new(Default::default()),
        };
        Ok(SyncService {
            inner: Arc::new(Inner {
                db,
                assets_dir,
                targets: info,
                default_storage: cfg.default_storage.clone(),
                shared,
                wake,
                status,
                worker: Mutex::new(Some(w)),
                cap_set_at_run_time: cap_set.into(),
            }),
        })
    }

    /// Starts the worker on its own task (once).
    pub fn spawn(&self) -> Option<tokio::task::JoinHandle<()>> {
        let w = self.inner.worker.lock().expect("poisoned").take()?;
        Some(tokio::spawn(w.run()))
    }

    /// The upload cap now: (Mbit/s, 0 = none; the daily unlimited window, "" = none; whether it
    /// was set at run time rather than by the configuration).
    pub async fn upload_cap(&self) -> (f64, String, bool) {
        let s = self.inner.shared.limiter.lock().await.schedule();
        let set = self.inner.cap_set_at_run_time.load(Ordering::Relaxed);
        (s.mbps, s.unlimited.map(|w| w.to_string()).unwrap_or_default(), set)
    }

    /// Sets the upload cap at run time (kept in the database across restarts).
    pub async fn set_upload_cap(&self, mbps: f64, unlimited_window: &str) -> Result<(), String> {
        let schedule = parse_cap(mbps, unlimited_window)?;
        let value = json!({"uploadMaxMbps": mbps, "uploadUnlimitedWindow": unlimited_window}).to_string();
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.meta_set(CAP_KEY, &value))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.inner.shared.limiter.lock().await.set_schedule(schedule);
        self.inner.cap_set_at_run_time.store(true, Ordering::Relaxed);
        tracing::info!(mbps, unlimited_window, "upload cap changed");
        Ok(())
    }

    /// Wakes the worker (a job was queued or retried).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub fn notifier(&self) -> Arc<tokio::sync::Notify> {
        self.inner.wake.clone()
    }

    /// Configured targets: name → (kind, base URL).
    pub fn targets(&self) -> &BTreeMap<String, (String, String)> {
        &self.inner.targets
    }

    pub fn default_storage(&self) -> &str {
        &self.inner.default_storage
    }

    pub fn assets_dir(&self) -> &std::path::Path {
        &self.inner.assets_dir
    }

    /// The URL of a job's HLS manifest in its target.
    pub fn url(&self, job: &SyncJobRow) -> Option<String> {
        let (_, (_, base)) = self.inner.targets.iter().find(|(k, _)| k.eq_ignore_ascii_case(&job.storage))?;
        let prefix = keys::Prefix::new(&job.container)?;
        Some(format!("{base}/{}", prefix.multivariant()))
    }

    /// The worker's view for `GET /edge/v1/sync`: targets, disk, counters.
    pub fn status_json(&self) -> Value {
        let st = self.inner.status.lock().expect("poisoned");
        let targets: Vec<Value> = self
            .inner
            .targets
            .iter()
            .map(|(name, (kind, url))| {
                let s = st.targets.get(name);
                json!({
                    "name": name,
                    "kind": kind,
                    "url": url,
                    "reachable": s.and_then(|s| s.0),
                    "error": s.and_then(|s| s.1.clone()),
                    "checked": s.and_then(|s| s.2).map(|t| t.to_string()),
                })
            })
            .collect();
        let disk = st.disk.as_ref().map(|(u, refuse)| {
            json!({
                "totalBytes": u.total,
                "availableBytes": u.avail,
                "freePercent": (u.free_percent() * 10.0).round() / 10.0,
                "recordingRefused": refuse.is_some(),
                "reason": refuse,
                "localCopiesRemoved": st.evicted,
            })
        });
        let s = &self.inner.shared.stats;
        json!({
            "defaultStorage": self.inner.default_storage,
            "targets": targets,
            "disk": disk,
            "stats": {
                "bytesSent": s.bytes_sent.load(Ordering::Relaxed),
                "requests": s.requests.load(Ordering::Relaxed),
                "md5Verified": s.md5_verified.load(Ordering::Relaxed),
                "md5Mismatches": s.md5_mismatches.load(Ordering::Relaxed),
                "partsResumed": s.parts_resumed.load(Ordering::Relaxed),
                "objectsUploaded": s.objects_uploaded.load(Ordering::Relaxed),
            },
        })
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.inner.db
    }
}
