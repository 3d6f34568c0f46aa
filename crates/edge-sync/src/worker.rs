//! The worker: one tokio task that drives the outbox (docs/design/sync.md). It reads the
//! recording index and the files on disk, never the live pipeline; every step it takes is
//! stored in the outbox before the next, so a restart continues where it stopped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use edge_cmaf::{DashOptions, manifest};
use edge_db::{Db, ObjectState, PlannedObject, SyncJobRow, SyncObjectRow, SyncState};
use edge_model::Timestamp;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::backoff::{Backoff, random_u64};
use crate::disk;
use crate::http::Shared;
use crate::keys::{self, Prefix};
use crate::resume::{self, Outcome, Progress, Step};
use crate::target::{Target, TargetError};

/// How often a live job looks for new segments, and the idle poll of the outbox.
const LIVE_POLL: Duration = Duration::from_secs(2);
const IDLE_POLL: Duration = Duration::from_secs(5);
/// Final states of whole objects are stored in batches at most this far apart (one fsync
/// per batch rather than per object; a crash re-sends at most this much).
const FLUSH: Duration = Duration::from_millis(500);

pub(crate) struct Worker {
    pub db: Arc<Db>,
    pub assets_dir: PathBuf,
    pub targets: BTreeMap<String, Target>,
    pub shared: Arc<Shared>,
    pub part_size: u64,
    pub backoff: Backoff,
    pub disk_min_free_percent: f64,
    pub live_tag: String,
    pub default_storage: String,
    pub gate: edge_record::RecordGate,
    pub wake: Arc<tokio::sync::Notify>,
    pub status: Arc<Mutex<Status>>,
    /// Live jobs: per asset, the last segment seq planned per rendition, so a pass every 2 s
    /// plans only the new segments (a final pass always plans everything).
    pub watermarks: Mutex<HashMap<String, HashMap<String, i64>>>,
}

/// What the worker last saw, for `GET /edge/v1/sync`.
#[derive(Debug, Default)]
pub struct Status {
    /// By target name: reachable at the last attempt, and the last error.
    pub targets: HashMap<String, TargetStatus>,
    pub disk: Option<(disk::Usage, Option<String>)>,
    pub evicted: u64,
}

/// (reachable at the last attempt, last error, when).
pub type TargetStatus = (Option<bool>, Option<String>, Option<Timestamp>);

type Manifests = HashMap<String, Bytes>;
/// Last segment seq per rendition.
type Marks = HashMap<String, i64>;
/// What a pass wants in the target, the generated manifests' bodies, and the new marks.
pub(crate) type Plan = (Vec<PlannedObject>, Manifests, Marks);

fn md5_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

fn later(d: Duration) -> Timestamp {
    Timestamp(Timestamp::now().0 + d)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task panicked")
}

impl Worker {
    fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, t)| t)
    }

    pub async fn run(self) {
        tracing::info!(targets = ?self.targets.keys().collect::<Vec<_>>(), "archive sync worker started");
        loop {
            self.disk_pass().await;
            self.live_pass().await;
            let db = self.db.clone();
            let due = match blocking(move || db.sync_jobs_due(Timestamp::now())).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("sync: cannot read the outbox: {e}");
                    Vec::new()
                }
            };
            let mut down: HashSet<String> = HashSet::new();
            for job in due {
                if down.contains(&job.storage.to_ascii_lowercase()) {
                    continue;
                }
                if let Err(TargetError::Transient(_)) = self.run_job(&job).await {
                    down.insert(job.storage.to_ascii_lowercase());
                }
            }
            let db = self.db.clone();
            let deadline = blocking(move || db.sync_next_deadline()).await.ok().flatten();
            let mut sleep = IDLE_POLL;
            if let Some(d) = deadline {
                let ns = (d.0 - Timestamp::now().0).whole_nanoseconds().max(0) as u64;
                sleep = sleep.min(Duration::from_nanos(ns));
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep.max(Duration::from_millis(50))) => {}
            }
        }
    }

    /// Live upload: assets recorded by running events tagged `<live_tag>: live` get a live
    /// job (segments go up as they are recorded).
    async fn live_pass(&self) {
        let (db, tag) = (self.db.clone(), self.live_tag.clone());
        let Ok(candidates) = blocking(move || db.sync_live_candidates(&tag)).await else { return };
        for (asset_id, storage) in candidates {
            let storage = if storage.is_empty() { self.default_storage.clone() } else { storage };
            if storage.is_empty() {
                continue;
            }
            let db = self.db.clone();
            let r = blocking(move || match db.sync_job(&asset_id)? {
                Some(_) => Ok(false),
                None => db.sync_enqueue(&asset_id, &storage, true).map(|_| true),
            })
            .await;
            if let Err(e) = r {
                tracing::warn!("sync: cannot queue a live upload: {e}");
            }
        }
    }

    /// The disk policy: measure, delete the oldest synced archives if needed, open or close
    /// the recording gate.
    async fn disk_pass(&self) {
        let dir = self.assets_dir.clone();
        let Ok(u) = blocking(move || disk::usage(&dir)).await else { return };
        let low = self.disk_min_free_percent > 0.0 && u.free_percent() < self.disk_min_free_percent;
        let db = self.db.clone();
        let evictable = if low { blocking(move || db.sync_evictable()).await.unwrap_or_default() } else { Vec::new() };
        let dir = self.assets_dir.clone();
        let sizes: Vec<(String, u64)> = blocking(move || {
            evictable.into_iter().map(|j| (j.asset_id.clone(), dir_size(&dir.join(&j.asset_id)))).collect()
        })
        .await;
        let decision = disk::decide(u, self.disk_min_free_percent, &sizes);
        for id in &decision.evict {
            let (db, id2) = (self.db.clone(), id.clone());
            let path = self.assets_dir.join(id);
            let p2 = path.to_string_lossy().into_owned();
            match blocking(move || db.sync_evict(&id2, &p2)).await {
                Ok(true) => {
                    tracing::warn!(asset = %id, free = format!("{:.1}%", u.free_percent()), "disk policy: removing the local copy of a synced archive (the cloud copy stays)");
                    let db = self.db.clone();
                    let p3 = path.to_string_lossy().into_owned();
                    let removed = blocking(move || {
                        match std::fs::remove_dir_all(&path) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e.to_string()),
                        }
                        db.garbage_done(&p3).map_err(|e| e.to_string())
                    })
                    .await;
                    if let Err(e) = removed {
                        tracing::warn!(asset = %id, "disk policy: cannot remove the local copy: {e}");
                    }
                    self.status.lock().expect("poisoned").evicted += 1;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(asset = %id, "disk policy: {e}"),
            }
        }
        let u = if decision.evict.is_empty() {
            u
        } else {
            let dir = self.assets_dir.clone();
            blocking(move || disk::usage(&dir)).await.unwrap_or(u)
        };
        let refuse = if decision.evict.is_empty() {
            decision.refuse
        } else {
            disk::decide(u, self.disk_min_free_percent, &[]).refuse
        };
        match &refuse {
            Some(why) => {
                if self.gate.refused().is_none() {
                    tracing::error!("{why}");
                }
                self.gate.close(why.clone());
            }
            None => {
                if self.gate.refused().is_some() {
                    tracing::info!("disk policy: free space is back; new recordings are accepted again");
                }
                self.gate.open();
            }
        }
        self.status.lock().expect("poisoned").disk = Some((u, refuse));
    }

    fn set_target(&self, name: &str, ok: bool, err: Option<String>) {
        let mut s = self.status.lock().expect("poisoned");
        let e = s.targets.entry(name.to_owned()).or_default();
        if e.0 != Some(ok) {
            if ok {
                tracing::info!(target = %name, "storage target reachable: uploads resume");
            } else {
                tracing::warn!(target = %name, error = ?err, "storage target unreachable: uploads paused, retrying with backoff");
            }
        }
        *e = (Some(ok), err.or(if ok { None } else { e.1.clone() }), Some(Timestamp::now()));
    }

    async fn set_job(
        &self,
        job: &SyncJobRow,
        state: SyncState,
        attempts: i64,
        next: Option<Timestamp>,
        err: Option<String>,
    ) {
        let (db, id) = (self.db.clone(), job.asset_id.clone());
        if let Err(e) = blocking(move || db.sync_job_set(&id, state, attempts, next, err.as_deref())).await {
            tracing::error!(asset = %job.asset_id, "sync: cannot update the outbox: {e}");
        }
    }

    /// One pass over a job: plan, upload what is missing, then settle its state.
    async fn run_job(&self, job: &SyncJobRow) -> Result<(), TargetError> {
        let Some(target) = self.target(&job.storage) else {
            let e = format!(
                "storage account '{}' is not configured: add [storage.{}] to config.toml, then retry",
                job.storage, job.storage
            );
            self.set_job(job, SyncState::Failed, job.attempts, None, Some(e)).await;
            return Ok(());
        };
        let Some(prefix) = Prefix::new(&job.container) else {
            let e = format!("the asset's container name '{}' cannot be used as an object key prefix", job.container);
            self.set_job(job, SyncState::Failed, job.attempts, None, Some(e)).await;
            return Ok(());
        };
        // Live until the event stops (the stop re-queues the job as final).
        let (db, id) = (self.db.clone(), job.asset_id.clone());
        let recording =
            blocking(move || db.asset_live_info(&id)).await.ok().flatten().is_some_and(|i| i.live_event_running);
        let live = job.live && recording;
        if job.state != SyncState::Uploading {
            self.set_job(job, SyncState::Uploading, job.attempts, None, None).await;
        }
        let mut failed: Vec<String> = Vec::new();
        // Plan, upload, and plan again until nothing new appears: a segment recorded while
        // the pass ran (the last one of a deleted live output) is not left behind.
        for _round in 0..5 {
            let (db, dir, j2, p2) = (self.db.clone(), self.assets_dir.clone(), job.clone(), prefix.clone());
            let after = if live { self.watermarks.lock().expect("poisoned").get(&job.asset_id).cloned() } else { None };
            let planned = blocking(move || plan(&db, &dir, &j2, &p2, !live, after.as_ref())).await;
            let (planned, manifests, marks) = match planned {
                Ok(p) => p,
                Err(e) => {
                    self.set_job(job, SyncState::Failed, job.attempts, None, Some(e)).await;
                    return Ok(());
                }
            };
            let (db, id) = (self.db.clone(), job.asset_id.clone());
            let objects = blocking(move || db.sync_plan(&id, &planned).and_then(|_| db.sync_objects_todo(&id))).await;
            let objects = match objects {
                Ok(o) => {
                    let mut w = self.watermarks.lock().expect("poisoned");
                    if live {
                        w.insert(job.asset_id.clone(), marks);
                    } else {
                        w.remove(&job.asset_id);
                    }
                    o
                }
                Err(e) => {
                    tracing::error!(asset = %job.asset_id, "sync: {e}");
                    return Ok(());
                }
            };
            let todo: Vec<SyncObjectRow> = objects
                .into_iter()
                .filter(|o| o.state != ObjectState::Done && o.state != ObjectState::Failed)
                .filter(|o| o.source.is_some() || manifests.contains_key(&o.key))
                .collect();
            if todo.is_empty() {
                break;
            }
            let mut deferred: Vec<SyncObjectRow> = Vec::new();
            let mut flushed = std::time::Instant::now();
            for o in todo {
                let r = self.upload(target, o.clone(), &manifests).await;
                if let Ok(Some(row)) = &r {
                    deferred.push(row.clone());
                }
                if !deferred.is_empty() && (r.is_err() || deferred.len() >= 64 || flushed.elapsed() >= FLUSH) {
                    self.store_batch(std::mem::take(&mut deferred)).await;
                    flushed = std::time::Instant::now();
                }
                match r {
                    Ok(_) => {}
                    Err(TargetError::Transient(e)) => {
                        let attempts = job.attempts + 1;
                        let delay = self.backoff.delay(attempts as u32, random_u64());
                        let msg = format!(
                            "storage target '{}' unreachable (attempt {attempts}; next in {} s): {e}",
                            target.name,
                            delay.as_secs()
                        );
                        self.set_target(&target.name, false, Some(e.clone()));
                        self.set_job(job, SyncState::Pending, attempts, Some(later(delay)), Some(msg)).await;
                        return Err(TargetError::Transient(e));
                    }
                    Err(TargetError::Permanent(e) | TargetError::UploadLost(e)) => {
                        tracing::warn!(asset = %job.asset_id, key = %o.key, "sync: object failed: {e}");
                        let mut f = o.clone();
                        f.state = ObjectState::Failed;
                        f.attempts += 1;
                        f.last_error = Some(e.clone());
                        let db = self.db.clone();
                        let _ = blocking(move || db.sync_object_update(&f)).await;
                        failed.push(e);
                    }
                }
            }
            self.store_batch(deferred).await;
        }
        self.set_target(&target.name, true, None);
        if let Some(first) = failed.first() {
            let e = format!("{} object(s) failed; first: {first}", failed.len());
            self.set_job(job, SyncState::Failed, job.attempts + 1, None, Some(e)).await;
        } else if live {
            self.set_job(job, SyncState::Uploading, 0, Some(later(LIVE_POLL)), None).await;
        } else {
            tracing::info!(asset = %job.asset_name, target = %target.name, "archive synced");
            self.set_job(job, SyncState::Synced, 0, None, None).await;
        }
        Ok(())
    }

    async fn store_batch(&self, rows: Vec<SyncObjectRow>) {
        if rows.is_empty() {
            return;
        }
        let db = self.db.clone();
        if let Err(e) = blocking(move || db.sync_objects_update(&rows)).await {
            tracing::error!("sync: cannot store progress: {e}");
        }
    }

    async fn store(&self, o: &SyncObjectRow) {
        let (db, o) = (self.db.clone(), o.clone());
        if let Err(e) = blocking(move || db.sync_object_update(&o)).await {
            tracing::error!("sync: cannot store progress: {e}");
        }
    }

    /// Uploads one object to the end, storing progress after every step.
    /// Uploads one object. A whole-object upload returns its final row for the caller to store
    /// in a batch (losing it in a crash only sends the object again: same key, same bytes);
    /// block / multipart progress is stored at every step, before the next.
    async fn upload(
        &self,
        target: &Target,
        o: SyncObjectRow,
        manifests: &Manifests,
    ) -> Result<Option<SyncObjectRow>, TargetError> {
        let (t0, key) = (std::time::Instant::now(), o.key.clone());
        let r = self.upload_inner(target, o, manifests).await;
        tracing::debug!(key = %key, ms = t0.elapsed().as_millis() as u64, ok = r.is_ok(), "object upload");
        r
    }

    async fn upload_inner(
        &self,
        target: &Target,
        mut o: SyncObjectRow,
        manifests: &Manifests,
    ) -> Result<Option<SyncObjectRow>, TargetError> {
        let ct = keys::content_type(&o.key);
        let Some(source) = o.source.clone() else {
            let data = manifests.get(&o.key).cloned().expect("checked by the caller");
            target.put(&o.key, data.clone(), ct, None).await?;
            o.state = ObjectState::Done;
            o.bytes_done = data.len() as i64;
            o.md5 = Some(md5_b64(&data));
            o.last_error = None;
            self.shared.stats.objects_uploaded.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(o));
        };
        let path = self.assets_dir.join(&o.asset_id).join(&source);
        let p2 = path.clone();
        let size = match blocking(move || std::fs::metadata(&p2)).await {
            Ok(m) => m.len(),
            Err(e) => {
                return Err(TargetError::Permanent(format!(
                    "local file {} unreadable ({e}): the recording was removed or damaged",
                    path.display()
                )));
            }
        };
        let mut prog = Progress {
            done: false,
            upload_id: o.upload_id.clone(),
            parts: o.parts.clone(),
            bytes_done: o.bytes_done.max(0) as u64,
        };
        if !prog.parts.is_empty() {
            tracing::info!(key = %o.key, parts = prog.parts.len(), bytes = prog.bytes_done, "resuming an interrupted upload");
            self.shared.stats.parts_resumed.fetch_add(prog.parts.len() as u64, Ordering::Relaxed);
        }
        let mut whole_md5 = None;
        let mut multipart = false;
        loop {
            let step = resume::next_step(&prog, size, self.part_size, target.multipart());
            let outcome = match step {
                Step::Done => break,
                Step::PutWhole => {
                    // Read and hash on a blocking thread; the hash is checked against the
                    // service's and stored with the object.
                    let p2 = path.clone();
                    let (data, md5) = blocking(move || -> std::io::Result<(Bytes, [u8; 16])> {
                        let data = Bytes::from(std::fs::read(&p2)?);
                        let md5: [u8; 16] = Md5::digest(&data).into();
                        Ok((data, md5))
                    })
                    .await
                    .map_err(|e| TargetError::Permanent(format!("reading {}: {e}", path.display())))?;
                    whole_md5 = Some(base64::engine::general_purpose::STANDARD.encode(md5));
                    target.put(&o.key, data, ct, Some(md5)).await?;
                    Outcome::Put
                }
                Step::Create => {
                    multipart = true;
                    Outcome::Created(target.create_multipart(&o.key).await?)
                }
                Step::Part { idx, offset, len } => {
                    let data = read_range(&path, offset, len).await?;
                    let upload = prog.upload_id.clone().expect("created");
                    match target.put_part(&o.key, &upload, idx, data).await {
                        Ok(id) => Outcome::PartCommitted { idx, id, len },
                        Err(TargetError::UploadLost(e)) => {
                            tracing::warn!(key = %o.key, "{e}; starting the upload again");
                            Outcome::UploadLost
                        }
                        Err(e) => return Err(e),
                    }
                }
                Step::Complete => {
                    let upload = prog.upload_id.clone().expect("created");
                    match target.complete(&o.key, &upload, &prog.parts).await {
                        Ok(()) => Outcome::Completed,
                        Err(TargetError::UploadLost(e)) => {
                            tracing::warn!(key = %o.key, "{e}; starting the upload again");
                            Outcome::UploadLost
                        }
                        Err(e) => return Err(e),
                    }
                }
                Step::Restart => Outcome::Restarted,
            };
            prog = resume::apply(prog, outcome, size);
            o.state = if prog.done { ObjectState::Done } else { ObjectState::Uploading };
            o.upload_id = if prog.done { None } else { prog.upload_id.clone() };
            o.parts = if prog.done { Vec::new() } else { prog.parts.clone() };
            o.bytes_done = prog.bytes_done as i64;
            o.size = size as i64;
            if prog.done {
                o.md5 = match whole_md5.take() {
                    Some(m) => Some(m),
                    None => Some(file_md5(&path).await?),
                };
                o.last_error = None;
            }
            // Block / multipart progress is stored at every step; a whole object's final
            // state is handed back for a batched store.
            if !prog.done || multipart {
                self.store(&o).await;
            }
        }
        self.shared.stats.objects_uploaded.fetch_add(1, Ordering::Relaxed);
        Ok((!multipart).then_some(o))
    }
}

async fn read_range(path: &std::path::Path, offset: u64, len: u64) -> Result<Bytes, TargetError> {
    let p = path.to_owned();
    blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&p)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf)?;
        Ok::<_, std::io::Error>(Bytes::from(buf))
    })
    .await
    .map_err(|e| TargetError::Permanent(format!("reading {}: {e}", path.display())))
}

async fn file_md5(path: &std::path::Path) -> Result<String, TargetError> {
    let p = path.to_owned();
    blocking(move || {
        let mut f = std::fs::File::open(&p)?;
        let mut h = Md5::new();
        std::io::copy(&mut f, &mut h)?;
        Ok::<_, std::io::Error>(base64::engine::general_purpose::STANDARD.encode(h.finalize()))
    })
    .await
    .map_err(|e| TargetError::Permanent(format!("reading {}: {e}", path.display())))
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What the copy of a job should hold: every recorded file (from the index: a row always has
/// its file), and with `final_pass` the static manifests rendered from the same index by the
/// renderers the appliance serves VOD with. Manifests come last in the object order, so the
/// cloud copy never lists a segment that is not there yet.
pub(crate) fn plan(
    db: &Db,
    assets_dir: &std::path::Path,
    job: &SyncJobRow,
    prefix: &Prefix,
    final_pass: bool,
    after: Option<&HashMap<String, i64>>,
) -> Result<Plan, String> {
    let id = &job.asset_id;
    let err = |e: edge_db::DbError| format!("reading the recording index: {e}");
    let mut out = Vec::new();
    for r in db.renditions(id).map_err(err)? {
        let source = format!("{}/{}", r.rendition, edge_record::init_name(r.period));
        let size = match std::fs::metadata(assets_dir.join(id).join(&source)) {
            Ok(m) => m.len() as i64,
            Err(_) if job.evicted_at.is_some() => continue,
            Err(e) => return Err(format!("init segment {source} of the recording is unreadable: {e}")),
        };
        out.push(PlannedObject {
            key: prefix.init(&r.rendition, r.period as u32),
            source: Some(source),
            size,
            md5: None,
        });
    }
    let segments = db.asset_segments(id).map_err(err)?;
    let last_wallclock = segments.iter().map(|s| s.wallclock).max();
    let mut marks: HashMap<String, i64> = after.cloned().unwrap_or_default();
    for s in &segments {
        if after.and_then(|a| a.get(&s.rendition)).is_some_and(|&m| s.seq <= m) {
            continue;
        }
        let m = marks.entry(s.rendition.clone()).or_insert(s.seq);
        *m = (*m).max(s.seq);
        out.push(PlannedObject {
            key: prefix.segment(&s.rendition, s.seq as u64),
            source: Some(format!("{}/{}", s.rendition, edge_record::segment_name(s.seq))),
            size: s.size,
            md5: None,
        });
    }
    let mut manifests = Manifests::new();
    if final_pass && let Some(p) = edge_live::presentation::from_index(db, id, false, Duration::ZERO).map_err(err)? {
        let mut add = |key: String, body: String| {
            let body = Bytes::from(body);
            out.push(PlannedObject {
                key: key.clone(),
                source: None,
                size: body.len() as i64,
                md5: Some(md5_b64(&body)),
            });
            manifests.insert(key, body);
        };
        for rendition in p.tracks.keys() {
            if let Some(m) = manifest::hls_media(&p, rendition) {
                add(prefix.media_playlist(rendition), m);
            }
        }
        add(prefix.multivariant(), manifest::hls_multivariant(&p));
        // publishTime: the last segment's wall clock, so the same recording always gives the
        // same MPD (an unchanged manifest is not uploaded again).
        let publish = last_wallclock.map(|t| t.0).unwrap_or(p.availability_start);
        add(prefix.mpd(), manifest::dash_mpd(&p, publish, &DashOptions::default()));
    }
    Ok((out, manifests, marks))
}

/// The JSON of a job for the API.
pub fn job_json(job: &SyncJobRow, url: Option<String>) -> Value {
    json!({
        "state": job.state.as_str(),
        "bytesDone": job.bytes_done,
        "bytesTotal": job.bytes_total,
        "url": url,
        "error": job.last_error,
        "storageAccountName": job.storage,
        "live": job.live,
        "attempts": job.attempts,
        "nextAttemptAt": job.next_attempt_at.map(|t| t.to_string()),
        "syncedAt": job.synced_at.map(|t| t.to_string()),
        "localCopyRemovedAt": job.evicted_at.map(|t| t.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_db::{AssetRow, PeriodRow, RenditionRow, SegmentRow};

    struct Fixture {
        dir: PathBuf,
        db: Arc<Db>,
        asset: String,
        files: BTreeMap<String, Vec<u8>>,
    }

    /// A recorded asset (init + 3 segments of 300 KB, through the recorder) and its job.
    fn fixture() -> Fixture {
        let dir = std::env::temp_dir().join(format!("edge-sync-worker-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        let db = Arc::new(Db::open(&dir.join("db"), "t").unwrap());
        let asset = uuid::Uuid::new_v4().to_string();
        let now = Timestamp::now();
        db.asset_upsert(&AssetRow {
            id: asset.clone(),
            name: "Rec".into(),
            container: format!("asset-{asset}"),
            storage_account: "nas".into(),
            manifest_name: Some("manifest".into()),
            properties: serde_json::json!({}),
            created: now,
            last_modified: now,
        })
        .unwrap();
        db.recording_ensure(&edge_db::RecordingRow {
            asset_id: asset.clone(),
            availability_start: now,
            target_duration_ms: 2000,
        })
        .unwrap();
        let rec = edge_record::Recorder::new(db.clone(), dir.join("assets"));
        let p =
            PeriodRow { asset_id: asset.clone(), period: 0, media_start: 0, media_timescale: 90000, live_start_ms: 0 };
        let r = RenditionRow {
            asset_id: asset.clone(),
            rendition: "video".into(),
            period: 0,
            track_id: 1,
            kind: "video".into(),
            codec: "avc1.64001f".into(),
            timescale: 90000,
            bandwidth: 2_000_000,
            average_bandwidth: 0,
            width: 1280,
            height: 720,
            frame_rate_num: 30,
            frame_rate_den: 1,
            sample_rate: 0,
            channels: 0,
            created: now,
        };
        rec.write_init(&p, &r, b"init-bytes").unwrap();
        let mut files = BTreeMap::new();
        files.insert("video/init-0.mp4".to_string(), b"init-bytes".to_vec());
        for seq in 0..3i64 {
            let data: Vec<u8> = (0..300_000u32).map(|i| (i as i64 * 7 + seq) as u8).collect();
            let row = SegmentRow {
                asset_id: asset.clone(),
                rendition: "video".into(),
                seq,
                period: 0,
                start: seq * 180_000,
                duration: 180_000,
                size: data.len() as i64,
                independent: true,
                wallclock: now,
            };
            rec.write_segments(&[(row, Bytes::from(data.clone()))]).unwrap();
            files.insert(format!("video/{seq}.m4s"), data);
        }
        db.sync_enqueue(&asset, "nas", false).unwrap();
        Fixture { dir, db, asset, files }
    }

    fn worker(f: &Fixture) -> Worker {
        let cfg = edge_config::StorageTarget {
            kind: "dir".into(),
            path: f.dir.join("cloud").to_string_lossy().into_owned(),
            ..Default::default()
        };
        let shared =
            Shared::new(crate::ratelimit::Limiter::new(crate::ratelimit::Schedule { mbps: 0.0, unlimited: None }));
        let t = Target::build("nas", &cfg, shared.clone(), object_store::ClientOptions::new()).unwrap();
        Worker {
            db: f.db.clone(),
            assets_dir: f.dir.join("assets"),
            targets: BTreeMap::from([("nas".to_string(), t)]),
            shared,
            part_size: 64 * 1024,
            backoff: Backoff::default(),
            disk_min_free_percent: 0.0,
            live_tag: crate::LIVE_TAG.into(),
            default_storage: String::new(),
            gate: edge_record::RecordGate::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
            status: Arc::new(Mutex::new(Status::default())),
            watermarks: Mutex::new(HashMap::new()),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_copies_every_file_and_the_manifests_then_nothing_more() {
        let f = fixture();
        let w = worker(&f);
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        w.run_job(&job).await.unwrap();
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        assert_eq!(job.state, SyncState::Synced, "{job:?}");
        assert_eq!(job.bytes_done, job.bytes_total);
        let root = f.dir.join("cloud").join(format!("asset-{}", f.asset));
        for (rel, data) in &f.files {
            assert_eq!(&std::fs::read(root.join(rel)).unwrap(), data, "{rel}");
        }
        let media = std::fs::read_to_string(root.join("video/index.m3u8")).unwrap();
        assert!(media.contains("#EXT-X-ENDLIST") && media.contains("2.m4s") && media.contains("init-0.mp4"), "{media}");
        let mv = std::fs::read_to_string(root.join("index.m3u8")).unwrap();
        assert!(mv.contains("video/index.m3u8"), "{mv}");
        assert!(std::fs::read_to_string(root.join("manifest.mpd")).unwrap().contains("type=\"static\""));
        // Every object row is done with the MD5 of its content.
        for o in f.db.sync_objects(&f.asset).unwrap() {
            assert_eq!(o.state, ObjectState::Done, "{o:?}");
            let content = std::fs::read(f.dir.join("cloud").join(&o.key)).unwrap();
            assert_eq!(o.md5.as_deref(), Some(md5_b64(&content).as_str()), "{}", o.key);
        }
        // A second pass (a duplicate enqueue) sends nothing: keys are immutable, manifests unchanged.
        let uploaded = w.shared.stats.objects_uploaded.load(Ordering::Relaxed);
        f.db.sync_enqueue(&f.asset, "nas", false).unwrap();
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        w.run_job(&job).await.unwrap();
        assert_eq!(w.shared.stats.objects_uploaded.load(Ordering::Relaxed), uploaded);
        assert_eq!(f.db.sync_job(&f.asset).unwrap().unwrap().state, SyncState::Synced);
        std::fs::remove_dir_all(&f.dir).ok();
    }

    #[test]
    fn live_passes_plan_only_new_segments_and_final_passes_everything() {
        let f = fixture();
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        let prefix = Prefix::new(&job.container).unwrap();
        let assets = f.dir.join("assets");
        let (all, manifests, marks) = plan(&f.db, &assets, &job, &prefix, false, None).unwrap();
        assert_eq!(all.len(), 4, "init + 3 segments, no manifests while live");
        assert!(manifests.is_empty());
        assert_eq!(marks.get("video"), Some(&2));
        let after = HashMap::from([("video".to_string(), 1i64)]);
        let (new, _, marks) = plan(&f.db, &assets, &job, &prefix, false, Some(&after)).unwrap();
        let keys: Vec<&str> = new.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, vec![prefix.init("video", 0).as_str(), prefix.segment("video", 2).as_str()]);
        assert_eq!(marks.get("video"), Some(&2));
        let (fin, manifests, _) = plan(&f.db, &assets, &job, &prefix, true, None).unwrap();
        assert_eq!(fin.len(), 4 + 3, "every file plus multivariant, media playlist and MPD");
        assert_eq!(manifests.len(), 3);
        std::fs::remove_dir_all(&f.dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_target_or_local_file_fails_the_job_with_the_reason() {
        let f = fixture();
        let mut w = worker(&f);
        w.targets.clear();
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        w.run_job(&job).await.unwrap();
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        assert_eq!(job.state, SyncState::Failed);
        assert!(job.last_error.as_deref().unwrap().contains("[storage.nas]"), "{job:?}");
        // Retry with the target back, but a segment file gone: that object fails, the rest goes up.
        let w = worker(&f);
        std::fs::remove_file(f.dir.join("assets").join(&f.asset).join("video/1.m4s")).unwrap();
        assert!(f.db.sync_retry(&f.asset, false).unwrap());
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        w.run_job(&job).await.unwrap();
        let job = f.db.sync_job(&f.asset).unwrap().unwrap();
        assert_eq!(job.state, SyncState::Failed);
        assert!(job.last_error.as_deref().unwrap().contains("video/1.m4s"), "{job:?}");
        let failed: Vec<String> =
            f.db.sync_objects(&f.asset)
                .unwrap()
                .into_iter()
                .filter(|o| o.state == ObjectState::Failed)
                .map(|o| o.key)
                .collect();
        assert_eq!(failed, vec![format!("asset-{}/video/1.m4s", f.asset)]);
        std::fs::remove_dir_all(&f.dir).ok();
    }
}
