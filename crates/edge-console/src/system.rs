//! `GET /edge/v1/system`: what the technician console shows that the ARM API does not carry:
//! version and uptime, the data disk, CPU and memory, hardware encoders, capture devices and the
//! ingest listeners. Same authentication as the API.
//!
//! The numbers are a handful of reads of /proc and one statvfs, hand-written here: a system
//! information crate would scan every process on refresh (this endpoint is polled by the
//! dashboard) and add a dependency for five numbers.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use edge_api::Shared;
use edge_api::error::ApiError;
use serde_json::{Value, json};

static START: OnceLock<Instant> = OnceLock::new();

pub(crate) fn mark_start() {
    START.get_or_init(Instant::now);
}

pub(crate) async fn handler(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = edge_api::authenticate(&st, &headers).await {
        return e.into_response();
    }
    let st2 = st.clone();
    match tokio::task::spawn_blocking(move || report(&st2)).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => ApiError::internal("system report", e).into_response(),
    }
}

/// `GET /edge/v1/storage`: bytes on disk per asset (the ARM asset has no size), for the archive.
pub(crate) async fn storage_handler(State(st): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = edge_api::authenticate(&st, &headers).await {
        return e.into_response();
    }
    let dir = st.assets_dir.clone();
    match tokio::task::spawn_blocking(move || asset_sizes(&dir)).await {
        Ok(v) => axum::Json(json!({"assets": v})).into_response(),
        Err(e) => ApiError::internal("storage report", e).into_response(),
    }
}

/// One entry per asset directory (named by asset id): total bytes and files, recursively.
fn asset_sizes(assets_dir: &Path) -> Vec<Value> {
    fn walk(p: &Path, bytes: &mut u64, files: &mut u64) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path(), bytes, files),
                Ok(t) if t.is_file() => {
                    *bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                    *files += 1;
                }
                _ => {}
            }
        }
    }
    let Ok(rd) = std::fs::read_dir(assets_dir) else { return Vec::new() };
    let mut out: Vec<(String, u64, u64)> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let id = e.file_name().into_string().ok()?;
            let (mut bytes, mut files) = (0, 0);
            walk(&e.path(), &mut bytes, &mut files);
            Some((id, bytes, files))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(id, bytes, files)| json!({"assetId": id, "bytes": bytes, "files": files})).collect()
}

fn report(st: &Shared) -> Value {
    let id = &st.identity;
    let a = &st.addrs;
    let data_dir = st.assets_dir.parent().unwrap_or(&st.assets_dir);
    let uptime = START.get().map(|s| s.elapsed().as_secs()).unwrap_or(0);
    let (cpu_secs, rss) = own_process();
    let mem = meminfo(&read("/proc/meminfo"));
    let h = &a.ingest_host;
    // RTMP, RTMPS and SRT are bound before the appliance reports ready; RTSP ingest is a
    // separate piece of work, so the console asks the port whether anything answers.
    let rtsp_up = tcp_answers(h, a.rtsp_port);
    let devices = capture_devices(Path::new("/dev"), Path::new("/sys/class/video4linux"));
    let encoders = hardware_encoders(Path::new("/dev/dri"));
    json!({
        "version": st.version,
        "uptimeSeconds": uptime,
        "hostUptimeSeconds": read("/proc/uptime").split_whitespace().next().and_then(|s| s.parse::<f64>().ok()),
        "identity": {
            "subscriptionId": id.subscription_id,
            "resourceGroup": id.resource_group,
            "accountName": id.account_name,
            "location": id.location,
        },
        "publicHost": a.public_host,
        "disk": disk(data_dir),
        "cpu": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "loadAverage": loadavg(&read("/proc/loadavg")),
            "processCpuSeconds": cpu_secs,
        },
        "memory": {
            "totalBytes": mem.0,
            "availableBytes": mem.1,
            "processRssBytes": rss,
        },
        "hardwareEncoders": encoders,
        "hardwareEncoderNote": if encoders.is_empty() {
            "No hardware video encoder was found (no /dev/dri render node): ABR events are transcoded with the x264 software encoder, which limits how many can run at once."
        } else {
            "A GPU render node is present: ABR events use its VAAPI encoder when GStreamer can open it (each event's getStatus says which encoder it got and why)."
        },
        "transcoding": {"available": true, "note": "Standard (720p) and Premium1080p events are transcoded into an ABR ladder in a worker process per event; passthrough events are not transcoded."},
        "captureDevices": devices,
        "captureNote": if devices.is_empty() {
            "No capture device (/dev/video*) is connected."
        } else {
            "Use a device as an event's input with the LocalCapture protocol; its modes: GET /edge/v1/captureDevices."
        },
        "ingest": [
            {"protocol": "RTMP", "url": format!("rtmp://{h}:{}/live", a.rtmp_port), "available": true},
            {"protocol": "RTMPS", "url": format!("rtmps://{h}:{}/live", a.rtmps_port), "available": true},
            {"protocol": "SRT", "url": format!("srt://{h}:{}", a.srt_port), "available": true},
            {"protocol": "RTSP", "url": format!("rtsp://{h}:{}/live", a.rtsp_port), "available": rtsp_up},
        ],
        "runningLiveEvents": st.live.running_count(),
    })
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// statvfs's block counts are 32-bit on some targets (fsblkcnt_t), 64-bit here.
#[allow(clippy::unnecessary_cast)]
fn disk(dir: &Path) -> Value {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let f = s.fragment_size() as u64;
            json!({
                "path": dir.display().to_string(),
                "totalBytes": s.blocks() as u64 * f,
                "freeBytes": s.blocks_free() as u64 * f,
                "availableBytes": s.blocks_available() as u64 * f,
            })
        }
        Err(e) => json!({"path": dir.display().to_string(), "error": e.to_string()}),
    }
}

fn loadavg(s: &str) -> Vec<f64> {
    s.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect()
}

/// (MemTotal, MemAvailable) in bytes.
fn meminfo(s: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    (field("MemTotal"), field("MemAvailable"))
}

/// CPU seconds (user + system) and resident bytes of this process.
fn own_process() -> (Option<f64>, Option<u64>) {
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let cpu = cpu_seconds(&read("/proc/self/stat"), tick);
    let rss = meminfo_like(&read("/proc/self/status"), "VmRSS");
    (cpu, rss)
}

/// utime + stime from /proc/<pid>/stat (fields 14 and 15, counted after the `(comm)` which may
/// hold spaces).
fn cpu_seconds(stat: &str, tick: f64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / tick)
}

fn meminfo_like(s: &str, name: &str) -> Option<u64> {
    s.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// `/dev/video*` with the driver's name for each, as V4L2 lists them in sysfs.
fn capture_devices(dev: &Path, sysfs: &Path) -> Vec<Value> {
    let Ok(rd) = std::fs::read_dir(dev) else { return Vec::new() };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.strip_prefix("video").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())))
        .collect();
    names.sort_by_key(|n| n[5..].parse::<u32>().unwrap_or(u32::MAX));
    names
        .into_iter()
        .map(|n| {
            let label = std::fs::read_to_string(sysfs.join(&n).join("name")).map(|s| s.trim().to_owned()).ok();
            json!({"path": dev.join(&n).display().to_string(), "name": label})
        })
        .collect()
}

/// GPU render nodes (VAAPI's way in); an encoder on them is only usable once transcoding exists.
fn hardware_encoders(dri: &Path) -> Vec<Value> {
    let Ok(rd) = std::fs::read_dir(dri) else { return Vec::new() };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("renderD"))
        .map(|n| dri.join(n).display().to_string())
        .collect();
    v.sort();
    v.into_iter().map(|p| json!({"device": p, "kind": "VAAPI render node"})).collect()
}

fn tcp_answers(host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        assert_eq!(loadavg("0.52 0.38 0.30 2/611 12345\n"), vec![0.52, 0.38, 0.30]);
        assert_eq!(
            meminfo("MemTotal:       24576000 kB\nMemFree: 1 kB\nMemAvailable:   12288000 kB\n"),
            (Some(24576000 * 1024), Some(12288000 * 1024))
        );
        assert_eq!(meminfo(""), (None, None));
        // A process name with spaces and parentheses does not shift the fields.
        let stat = "4242 (rms (edge) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(cpu_seconds(stat, 100.0), Some(3.0));
        assert_eq!(cpu_seconds("garbage", 100.0), None);
        assert_eq!(meminfo_like("Name:\trms-edge\nVmRSS:\t   2048 kB\n", "VmRSS"), Some(2048 * 1024));
    }

    #[test]
    fn devices_from_a_fake_dev_tree() {
        let root = std::env::temp_dir().join(format!("edge-console-dev-{}", std::process::id()));
        let (dev, sys, dri) = (root.join("dev"), root.join("sys"), root.join("dri"));
        for d in [&dev, &sys.join("video0"), &dri] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in ["video10", "video0", "video", "videoX", "null"] {
            std::fs::write(dev.join(f), b"").unwrap();
        }
        std::fs::write(sys.join("video0").join("name"), "HDMI capture\n").unwrap();
        let d = capture_devices(&dev, &sys);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0]["name"], "HDMI capture");
        assert!(d[0]["path"].as_str().unwrap().ends_with("/video0"));
        assert!(d[1]["name"].is_null());
        assert!(hardware_encoders(&dri).is_empty());
        std::fs::write(dri.join("renderD128"), b"").unwrap();
        std::fs::write(dri.join("card0"), b"").unwrap();
        assert_eq!(hardware_encoders(&dri).len(), 1);
        assert!(capture_devices(&root.join("missing"), &sys).is_empty());
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn sizes_per_asset_directory() {
        let root = std::env::temp_dir().join(format!("edge-console-assets-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a1/video")).unwrap();
        std::fs::create_dir_all(root.join("b2")).unwrap();
        std::fs::write(root.join("a1/video/1.m4s"), vec![0u8; 1000]).unwrap();
        std::fs::write(root.join("a1/video/init.mp4"), vec![0u8; 24]).unwrap();
        std::fs::write(root.join("stray-file"), b"x").unwrap();
        let v = asset_sizes(&root);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], json!({"assetId": "a1", "bytes": 1024, "files": 2}));
        assert_eq!(v[1], json!({"assetId": "b2", "bytes": 0, "files": 0}));
        assert!(asset_sizes(&root.join("missing")).is_empty());
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn disk_of_a_real_directory() {
        let d = disk(&std::env::temp_dir());
        assert!(d["totalBytes"].as_u64().unwrap() > 0);
        assert!(d["availableBytes"].as_u64().unwrap() <= d["totalBytes"].as_u64().unwrap());
        assert!(disk(Path::new("/nonexistent/dir")).get("error").is_some());
    }
}
