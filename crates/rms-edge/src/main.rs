//! `rms-edge`: the appliance supervisor.
//!
//! `rms-edge serve` opens the database, resolves what a crash left in flight, binds the
//! listeners, tells systemd READY only once all of that is done, and feeds the watchdog while
//! the critical loops make progress. `rms-edge keys` manages API keys offline.

mod ingest;
mod listen;
mod netinfo;
mod tls;
mod transcode;
mod watchdog;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use edge_api::{AppState, Auth, Identity, PublicAddrs, Scheme};
use edge_config::{Config, ConfigArgs};
use edge_db::Db;
use edge_delivery::Delivery;
use edge_live::LiveRegistry;
use edge_record::Recorder;

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Parser)]
#[command(name = "rms-edge", version, about = "Live-video edge appliance serving the RMS / AMS v3 API")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the appliance.
    Serve(ConfigArgs),
    /// Manage API keys (works while the appliance runs).
    Keys {
        #[command(flatten)]
        cfg: ConfigArgs,
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Internal: the transcode worker the appliance starts per transcoding event (framed media on
    /// stdin and stdout; see crates/edge-gst).
    #[command(hide = true)]
    TranscodeWorker,
    /// Internal: prints the local capture devices (V4L2) as JSON (the appliance runs it for
    /// GET /edge/v1/captureDevices, so a driver that hangs while probed never stalls the API).
    #[command(hide = true)]
    CaptureDevices,
    /// Internal: prints the video encoder transcoding would use here, and why, as JSON (the
    /// appliance runs it for GET /edge/v1/encoders).
    #[command(hide = true)]
    ProbeEncoders,
    /// Internal: writes a JPEG thumbnail to stdout, of the keyframe on stdin (worker protocol) or
    /// of a frame from `--device` (the appliance runs it for the console's pictures).
    #[command(hide = true)]
    Thumbnail {
        #[arg(long)]
        device: Option<String>,
        #[arg(long, default_value_t = 320)]
        width: u32,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key and print it (it is shown only once).
    Create {
        #[arg(long, default_value = "key")]
        name: String,
    },
    /// List keys (ids and names; secrets are never stored).
    List,
    /// Revoke a key by id: tokens issued for it stop working at once.
    Revoke { id: String },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve(args) => serve(args),
        Cmd::Keys { cfg, cmd } => keys(cfg, cmd),
        Cmd::TranscodeWorker => {
            init_logging(&std::env::var("RMS_EDGE_WORKER_LOG").unwrap_or_else(|_| "info".into()));
            std::process::exit(edge_gst::worker::run(std::io::stdin().lock(), std::io::stdout()));
        }
        Cmd::CaptureDevices => edge_gst::devices::list()
            .map_err(|e| anyhow::anyhow!("capture devices: {e}"))
            .and_then(|d| serde_json::to_string(&d).map_err(Into::into))
            .map(|json| println!("{json}")),
        Cmd::Thumbnail { device, width } => {
            let jpeg = match device {
                Some(d) => edge_gst::thumbnail::from_device(&d, width),
                None => edge_gst::thumbnail::from_keyframe(std::io::stdin().lock(), width),
            };
            jpeg.map_err(|e| anyhow::anyhow!("thumbnail: {e}")).and_then(|j| {
                use std::io::Write;
                std::io::stdout().lock().write_all(&j).map_err(Into::into)
            })
        }
        Cmd::ProbeEncoders => edge_gst::worker::probe().map_err(|e| anyhow::anyhow!("encoder probe: {e}")).map(|c| {
            let doc = serde_json::json!({
                "encoder": c.element, "hardware": c.hardware, "decoder": c.decoder, "reason": c.reason,
            });
            println!("{doc}")
        }),
    };
    if let Err(e) = result {
        eprintln!("rms-edge: error: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd the journal adds its own timestamps.
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    if under_systemd {
        b.without_time().init();
    } else {
        b.init();
    }
}

fn open_db(cfg: &Config) -> Result<Db> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data-dir {}", cfg.data_dir.display()))?;
    let path = cfg.data_dir.join("rms-edge.db");
    Db::open(&path, VERSION).with_context(|| format!("cannot open the database {}", path.display()))
}

fn keys(args: ConfigArgs, cmd: KeysCmd) -> Result<()> {
    let cfg = Config::load(&args)?;
    let db = open_db(&cfg)?;
    match cmd {
        KeysCmd::Create { name } => {
            let k = edge_api::auth::new_key(&name);
            db.key_insert(&k.row)?;
            println!("{}", k.secret);
            eprintln!("Created key {} ({name}). Store it now: it cannot be shown again.", k.row.id);
        }
        KeysCmd::List => {
            println!("{:<18} {:<20} {:<30} STATUS", "ID", "NAME", "CREATED");
            for k in db.key_list()? {
                let status = match k.revoked {
                    Some(t) => format!("revoked {t}"),
                    None => "valid".into(),
                };
                println!("{:<18} {:<20} {:<30} {status}", k.id, k.name, k.created.to_string());
            }
            println!("subscriptionId: {}", cfg.subscription_id);
        }
        KeysCmd::Revoke { id } => {
            if !db.key_revoke(&id)? {
                bail!("no valid key with id '{id}' (see `rms-edge keys list`)");
            }
            println!("Revoked key {id}.");
        }
    }
    Ok(())
}

fn serve(args: ConfigArgs) -> Result<()> {
    let cfg = Config::load(&args)?;
    init_logging(&cfg.log_level);
    limit_malloc_arenas();
    // The blocking pool runs database reads and file reads for players; beyond a few
    // threads per core they only contend (and each thread keeps its own malloc arena).
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(16).build()?;
    rt.block_on(run(cfg))
}

/// glibc gives every thread that allocates its own arena (up to 8 per core), and arenas never
/// return their memory: with the blocking pool's threads coming and going, RSS grows by
/// megabytes per arena while the heap itself stays small. Two arenas are enough here: the
/// hot paths (packaging, delivery) allocate little per frame or request.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives freed heap memory back to the system twice a minute. glibc returns memory only from
/// the top of a heap, so a burst (players' requests, a backlog after the machine was starved)
/// would otherwise keep RSS at its peak for the life of the process.
async fn trim_memory() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free pages; it is safe to call at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into the host and an optional port.
fn split_host(h: &str) -> (&str, Option<&str>) {
    if let Some(rest) = h.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let port = rest[end + 1..].strip_prefix(':');
        return (&h[..end + 2], port);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (h, None),
    }
}

async fn run(cfg: Config) -> Result<()> {
    tracing::info!(version = VERSION, data_dir = %cfg.data_dir.display(), "rms-edge starting");
    let db = Arc::new(open_db(&cfg)?);

    // First start without any key: generate one and show it once.
    let mut new_key = None;
    if cfg.api_key.is_empty() && db.key_count_valid()? == 0 {
        let k = edge_api::auth::new_key("default");
        db.key_insert(&k.row)?;
        tracing::info!(id = %k.row.id, "generated the first API key (printed once on standard output)");
        new_key = Some(k.secret);
    }

    let tls = tls::load_or_generate(&cfg).context("TLS certificate")?;
    let public_host = if cfg.public_host.is_empty() {
        let ip = netinfo::primary_address();
        let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
        match cfg.https_addr.port() {
            443 => host,
            p => format!("{host}:{p}"),
        }
    } else {
        cfg.public_host.clone()
    };
    let ingest_host = split_host(&public_host).0.to_owned();

    // Recordings first: half-written segments of a crash are cleared before anything resumes.
    let assets_dir = cfg.data_dir.join("assets");
    std::fs::create_dir_all(&assets_dir).with_context(|| format!("cannot create {}", assets_dir.display()))?;
    let recorder = Recorder::new(db.clone(), assets_dir.clone());
    let repaired = tokio::task::block_in_place(|| recorder.recover()).context("recording repair")?;
    if repaired != Default::default() {
        tracing::warn!(?repaired, "repaired the recordings after an unclean shutdown");
    }
    // Archive sync: its own task, reading finished recordings from disk (never the live path);
    // its disk policy can close the recorder's gate for new recordings.
    let sync = edge_sync::SyncService::new(&cfg, db.clone(), assets_dir.clone(), recorder.gate())
        .map_err(|e| anyhow::anyhow!("archive sync: {e}"))?;
    edge_live::pipeline::set_part_target(cfg.ll_part_target_ms);
    let live = LiveRegistry::with_recording(db.clone(), recorder).with_front(Arc::new(
        transcode::Transcoding::new().context("transcoding")?.with_stream_events({
            let db = db.clone();
            Arc::new(move |event_id: &str, event_type: &str, level: &str, data: serde_json::Value| {
                ingest::append_stream_event(&db, event_id.to_owned(), event_type, level, data)
            })
        }),
    ));

    let auth = Auth::new(db.clone(), &cfg.subscription_id, &cfg.api_key, cfg.token_lifetime_secs)?;
    let state = Arc::new(AppState {
        db: db.clone(),
        auth,
        identity: Identity {
            subscription_id: cfg.subscription_id.clone(),
            resource_group: cfg.resource_group.clone(),
            account_name: cfg.account_name.clone(),
            location: cfg.location.clone(),
        },
        addrs: PublicAddrs {
            public_host: public_host.clone(),
            ingest_host,
            rtmp_port: cfg.rtmp_addr.port(),
            rtmps_port: cfg.rtmps_addr.port(),
            srt_port: cfg.srt_addr.port(),
            rtsp_port: cfg.rtsp_addr.port(),
        },
        live: live.clone(),
        assets_dir: assets_dir.clone(),
        event_max_duration: std::time::Duration::from_secs(cfg.event_max_duration_secs),
        version: VERSION,
        served: AtomicU64::new(0),
        sync: Some(sync.clone()),
    });

    let recovery = edge_api::startup(&state).await.map_err(|e| anyhow::anyhow!("start-up recovery: {}", e.message))?;
    if recovery.operations_resolved > 0 || !recovery.events_resolved.is_empty() {
        tracing::warn!(
            operations = recovery.operations_resolved,
            events = ?recovery.events_resolved,
            "resolved work interrupted by the previous shutdown"
        );
    }
    if !recovery.events_running.is_empty() {
        tracing::info!(events = ?recovery.events_running, "live events running again, waiting for their encoders");
    }

    let wd = watchdog::Watchdog::new(db.clone());
    let mut api = edge_api::router(state.clone());
    if std::env::var("RMS_EDGE_TEST_HOOKS").as_deref() == Ok("1") {
        tracing::warn!("test hooks enabled (RMS_EDGE_TEST_HOOKS=1): never in production");
        api = api.merge(wd.test_routes());
    }
    let delivery = Arc::new(Delivery::new(db.clone(), live.clone(), assets_dir.clone()));
    // The technician console (/console/, `/` redirects to it) and GET /edge/v1/system.
    let api = api.merge(edge_console::router(state.clone()));
    let api = api
        .merge(edge_api::capture_devices::router(
            state.clone(),
            child_probe("capture-devices", "the capture device probe"),
        ))
        .merge(edge_api::capture_devices::encoders_router(
            state.clone(),
            child_probe("probe-encoders", "the encoder probe"),
        ))
        .merge(edge_api::thumbnails::router(state.clone(), thumbnail_maker()));
    let app = app_router(api, delivery);

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let http = listen::bind(cfg.http_addr, "http").await?;
    let https = listen::bind(cfg.https_addr, "https").await?;
    let rtmp = listen::bind(cfg.rtmp_addr, "RTMP ingest").await?;
    let rtmps = listen::bind(cfg.rtmps_addr, "RTMPS ingest").await?;
    let glue: Arc<dyn edge_rtmp::PublishAuthorizer> = Arc::new(ingest::RtmpGlue::new(live.clone(), db.clone()));
    let rtmp_cfg = edge_rtmp::RtmpConfig {
        idle_timeout: std::time::Duration::from_secs(cfg.ingest_idle_timeout_secs),
        ..Default::default()
    };
    let srt = tokio::net::UdpSocket::bind(cfg.srt_addr)
        .await
        .with_context(|| format!("cannot listen for SRT ingest on {} (UDP)", cfg.srt_addr))?;
    tracing::info!("listening for SRT ingest on {} (UDP)", srt.local_addr().unwrap_or(cfg.srt_addr));
    let srt_glue: Arc<dyn edge_srt::SrtAuthorizer> = Arc::new(ingest::SrtGlue::new(live.clone(), db.clone()));
    let srt_cfg = edge_srt::SrtConfig {
        idle_timeout: std::time::Duration::from_secs(cfg.ingest_idle_timeout_secs),
        ..Default::default()
    };
    let rtsp = listen::bind(cfg.rtsp_addr, "RTSP push ingest").await?;
    let rtsp_glue: Arc<dyn edge_rtsp::RtspAuthorizer> = Arc::new(ingest::RtspGlue::new(live.clone(), db.clone()));
    let rtsp_cfg = edge_rtsp::PushConfig {
        idle_timeout: std::time::Duration::from_secs(cfg.ingest_idle_timeout_secs),
        ..Default::default()
    };
    let tasks = vec![
        tokio::spawn(edge_rtsp::serve(rtsp, rtsp_glue, rtsp_cfg, shutdown_rx.clone())),
        tokio::spawn(ingest::run_pullers(live.clone(), db.clone(), shutdown_rx.clone())),
        tokio::spawn(edge_srt::serve(srt, srt_glue, srt_cfg, shutdown_rx.clone())),
        tokio::spawn(listen::serve(http, app.clone(), None, Scheme::Http, shutdown_rx.clone())),
        tokio::spawn(listen::serve(https, app.clone(), Some(tls.acceptor.clone()), Scheme::Https, shutdown_rx.clone())),
        tokio::spawn(edge_rtmp::serve(rtmp, None, glue.clone(), rtmp_cfg.clone(), shutdown_rx.clone())),
        tokio::spawn(edge_rtmp::serve(rtmps, Some(tls.acceptor), glue, rtmp_cfg, shutdown_rx.clone())),
    ];

    let http_port = cfg.http_addr.port();
    let local_host = if cfg.http_addr.ip().is_unspecified() {
        split_host(&public_host).0.to_owned()
    } else {
        cfg.http_addr.ip().to_string()
    };
    print_banner(&cfg, &public_host, &local_host, http_port, new_key.as_deref(), &tls.cert_path);

    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("Ready: API on {} and {}", cfg.http_addr, cfg.https_addr)),
    ]);
    tokio::spawn(wd.clone().run(state.clone()));
    tokio::spawn(trim_memory());
    sync.spawn();

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = shutdown_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
    }
    Ok(())
}

/// One router for every HTTP(S) request: playback URLs start with a locator id (a GUID),
/// everything else is the API (which carries the console at `/console/` and `/`).
fn app_router(api: axum::Router, delivery: Arc<Delivery>) -> axum::Router {
    let d_time = delivery.clone();
    axum::Router::new()
        .route(edge_delivery::TIME_PATH, axum::routing::get(move || async move { d_time.time() }))
        .fallback(move |req: axum::extract::Request| {
            let api = api.clone();
            let delivery = delivery.clone();
            async move {
                if edge_delivery::path::looks_like_playback(req.uri().path()) {
                    delivery.handle(req).await
                } else {
                    match tower::ServiceExt::oneshot(api, req).await {
                        Ok(r) => r,
                        Err(e) => match e {},
                    }
                }
            }
        })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn print_banner(cfg: &Config, public_host: &str, local_host: &str, http_port: u16, new_key: Option<&str>, cert: &Path) {
    use std::io::Write;
    let https_base = format!("https://{public_host}/");
    let http_base =
        if http_port == 80 { format!("http://{local_host}/") } else { format!("http://{local_host}:{http_port}/") };
    let mut out = String::new();
    out.push_str(&format!("rms-edge {VERSION}\n"));
    out.push_str(&format!("  API endpoint:       {https_base}   (TLS certificate: {})\n", cert.display()));
    out.push_str(&format!("  API endpoint, HTTP: {http_base}\n"));
    out.push_str(&format!("  subscriptionId:     {}\n", cfg.subscription_id));
    out.push_str(&format!("  resourceGroupName:  {}\n", cfg.resource_group));
    out.push_str(&format!("  accountName:        {}\n", cfg.account_name));
    match new_key {
        Some(k) => {
            out.push_str(&format!("  apiKey:             {k}\n"));
            out.push_str("                      ^ shown only once: store it now (more keys: rms-edge keys create)\n");
        }
        None => {
            out.push_str("  apiKey:             (already created; manage with `rms-edge keys list|create|revoke`)\n")
        }
    }
    out.push_str(&format!("  Token:              POST {https_base}auth/token {{\"subscriptionId\", \"apiKey\"}}\n"));
    out.push_str(&format!(
        "  Playback:           https://{public_host}/<streamingLocatorId>/<manifest>.ism/manifest(format=m3u8-cmaf)\n"
    ));
    out.push_str("  Encoders:           each live event's properties.input.endpoints lists its ingest URLs\n");
    out.push_str("rms-edge ready\n");
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// Runs `rms-edge <arg>` (a GStreamer probe: capture devices, encoders) in a child process,
/// killed after 15 s, so a driver that hangs or crashes while probed never stalls the API.
fn child_probe(arg: &'static str, what: &'static str) -> edge_api::capture_devices::CaptureLister {
    Arc::new(move || {
        Box::pin(async move {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let run = tokio::process::Command::new(exe).arg(arg).kill_on_drop(true).output();
            let out = tokio::time::timeout(std::time::Duration::from_secs(15), run)
                .await
                .map_err(|_| format!("{what} took longer than 15 s"))?
                .map_err(|e| format!("cannot run {what}: {e}"))?;
            if !out.status.success() {
                return Err(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
            }
            serde_json::from_slice(&out.stdout).map_err(|e| format!("{what}'s output: {e}"))
        })
    })
}

/// Makes thumbnails with `rms-edge thumbnail` in a child process (killed after 15 s): a decoder
/// or driver that hangs or crashes costs one picture, never the appliance.
fn thumbnail_maker() -> edge_api::thumbnails::ThumbnailMaker {
    use edge_api::thumbnails::ThumbSource;
    use tokio::io::AsyncWriteExt;
    Arc::new(|source: ThumbSource, width: u32| {
        Box::pin(async move {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut cmd = tokio::process::Command::new(exe);
            cmd.arg("thumbnail").arg("--width").arg(width.to_string()).kill_on_drop(true);
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            let input = match source {
                ThumbSource::Device(path) => {
                    cmd.arg("--device").arg(path).stdin(std::process::Stdio::null());
                    None
                }
                ThumbSource::Keyframe(bytes) => {
                    cmd.stdin(std::process::Stdio::piped());
                    Some(bytes)
                }
            };
            let run = async move {
                let mut child = cmd.spawn().map_err(|e| format!("cannot run the thumbnail maker: {e}"))?;
                if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
                    // A child that fails early closes its stdin: its exit status says why.
                    let _ = stdin.write_all(&bytes).await;
                }
                child.wait_with_output().await.map_err(|e| format!("thumbnail maker: {e}"))
            };
            let out = tokio::time::timeout(std::time::Duration::from_secs(15), run)
                .await
                .map_err(|_| "the thumbnail took longer than 15 s".to_owned())??;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                return Err(last.trim_start_matches("rms-edge: error: thumbnail: ").to_owned());
            }
            Ok(bytes::Bytes::from(out.stdout))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::split_host;

    #[test]
    fn host_splitting() {
        assert_eq!(split_host("10.0.0.2:8443"), ("10.0.0.2", Some("8443")));
        assert_eq!(split_host("box.local"), ("box.local", None));
        assert_eq!(split_host("[fe80::1]:443"), ("[fe80::1]", Some("443")));
        assert_eq!(split_host("[fe80::1]"), ("[fe80::1]", None));
        assert_eq!(split_host("fe80::1"), ("fe80::1", None));
    }
}
