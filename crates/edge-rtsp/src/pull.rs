//! RTSP pull from IP cameras (`RTSPPull`) with retina's client: DESCRIBE, SETUP (TCP
//! interleaved or UDP; `rtsp_http`: TCP interleaved inside an RTSP-over-HTTP [`crate::tunnel`]),
//! PLAY, then retina's depacketized frames through the same [`MediaBuilder`] as push. One run
//! per live event start; it ends when the event stops. When the camera drops, the publish ends
//! (`End`, the registry records an interruption) and the puller reconnects with exponential
//! backoff; the next publish starts a new period, which players see as a discontinuity.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_media::{MediaEvent, MediaSender, SendOutcome};
use futures::StreamExt;
use retina::client::{
    Credentials, PlayOptions, SessionIdPolicy, SessionOptions, SetupOptions, TeardownPolicy, Transport,
    UnknownRtcpSsrcPolicy,
};
use retina::codec::{CodecItem, FrameFormat, ParameterSetInsertion, ParametersRef};
use tokio::sync::watch;
use tokio::time::timeout;

use crate::builder::{Frame, MediaBuilder, StreamSpec};
use crate::depack::AacLayout;
use crate::h26x::{ParamSets, VideoCodec};
use crate::sdp::StreamCodec;
use crate::stats::RtspStats;
use crate::tunnel::Tunnel;

/// `input.rtspPullMode` / `IngestOptions.RtspPullMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullMode {
    /// TCP interleaved first; UDP if the camera refuses it.
    TcpUdp,
    Tcp,
    Udp,
    /// RTSP tunnelled over HTTP on the camera's RTSP port ([`crate::tunnel`]), TCP interleaved
    /// inside. rtsp:// URLs only.
    RtspHttp,
}

impl PullMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "tcp_udp" => PullMode::TcpUdp,
            "tcp" => PullMode::Tcp,
            "udp" => PullMode::Udp,
            "rtsp_http" => PullMode::RtspHttp,
            _ => return None,
        })
    }

    fn transports(self) -> &'static [bool] {
        // true: TCP.
        match self {
            PullMode::TcpUdp => &[true, false],
            PullMode::Tcp | PullMode::RtspHttp => &[true],
            PullMode::Udp => &[false],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullConfig {
    /// The camera URL, credentials included (`rtsp://user:pass@cam/stream`).
    pub url: String,
    pub mode: PullMode,
    /// DESCRIBE/SETUP/PLAY, each.
    pub connect_timeout: Duration,
    /// No frame for this long: the camera is considered gone.
    pub media_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl PullConfig {
    pub fn new(url: String, mode: PullMode) -> Self {
        PullConfig {
            url,
            mode,
            connect_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

pub struct PullGrant {
    pub grant: u64,
    pub media: MediaSender,
    pub stats: Arc<RtspStats>,
}

/// Why the host refused a publish slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRefused {
    /// The event is no longer running: the run ends.
    Stopped,
    /// Try again later (e.g. a previous publisher still holds the slot).
    Busy(String),
}

/// The appliance's side of a pull run.
pub trait PullHost: Send + Sync {
    /// Takes the event's publisher slot for one connection to the camera.
    fn begin(&self, camera: &str) -> Result<PullGrant, PullRefused>;
    /// The connection's publish ended (AMS result code and message).
    fn end(&self, grant: u64, code: &str, message: &str);
    /// A stream event for the event (connection failures, quirks applied).
    fn report(&self, event_type: &str, level: &str, code: &str, message: &str);
}

/// Splits credentials out of the URL (retina takes them apart) and returns the URL for logs.
pub fn split_credentials(raw: &str) -> Result<(url::Url, Option<Credentials>), String> {
    let mut u = url::Url::parse(raw).map_err(|e| format!("bad camera URL: {e}"))?;
    if !matches!(u.scheme(), "rtsp" | "rtsps") {
        return Err("the camera URL must be rtsp:// or rtsps://".into());
    }
    let creds = (!u.username().is_empty()).then(|| Credentials {
        username: percent_decode(u.username()),
        password: percent_decode(u.password().unwrap_or_default()),
    });
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok((u, creds))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Next backoff: doubled, capped.
pub fn next_backoff(cur: Duration, cfg: &PullConfig) -> Duration {
    (cur * 2).clamp(cfg.backoff_min, cfg.backoff_max)
}

/// Pulls until `stop` turns true (or the host says the event stopped).
pub async fn run(cfg: PullConfig, host: Arc<dyn PullHost>, mut stop: watch::Receiver<bool>) {
    let (url, creds) = match split_credentials(&cfg.url) {
        Ok(x) => x,
        Err(e) => {
            host.report("StreamEvent/InvalidConnection", "Error", "MPE_INGEST_RTSP_PULL_URL", &e);
            return;
        }
    };
    if url.scheme() != "rtsp" {
        // retina speaks RTSP over TCP and UDP (and our HTTP tunnel), not over TLS: say so once
        // instead of failing every retry. (The API refuses such URLs at create; this covers
        // events stored before it did.)
        host.report(
            "StreamEvent/InvalidConnection",
            "Error",
            "MPE_INGEST_RTSP_PULL_URL",
            "RTSP over TLS (rtsps://) is not supported for camera pulls: use the camera's rtsp:// URL.",
        );
        return;
    }
    let mut backoff = Duration::ZERO;
    let mut failures_reported = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let outcome = tokio::select! {
            r = session(&cfg, &url, creds.clone(), &*host) => r,
            _ = stop.changed() => Outcome::Stopped,
        };
        match outcome {
            Outcome::Stopped => break,
            Outcome::Failed(why, delivered) => {
                // A connection that ran for a while starts the backoff over.
                if delivered && started.elapsed() > Duration::from_secs(10) {
                    backoff = Duration::ZERO;
                    failures_reported = 0;
                }
                backoff = next_backoff(backoff, &cfg);
                tracing::info!(camera = %url, %why, retry_in = ?backoff, "RTSP pull: camera connection lost or refused");
                // Report the first failures of a series, not every retry of a long outage.
                if failures_reported < 3 {
                    host.report(
                        "StreamEvent/InvalidConnection",
                        "Error",
                        "MPE_INGEST_RTSP_PULL_FAILED",
                        &format!("{why}; retrying in {:.1} s", backoff.as_secs_f64()),
                    );
                }
                failures_reported = failures_reported.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
}

enum Outcome {
    Stopped,
    /// The reason, and whether media was delivered.
    Failed(String, bool),
}

fn user_agent() -> String {
    format!("rms-edge/{}", env!("CARGO_PKG_VERSION"))
}

async fn session(cfg: &PullConfig, url: &url::Url, creds: Option<Credentials>, host: &dyn PullHost) -> Outcome {
    if cfg.mode == PullMode::RtspHttp {
        return tunnelled_session(cfg, url, creds, host).await;
    }
    let mut last_err = String::new();
    for &tcp in cfg.mode.transports() {
        match connect(cfg, url, creds.clone(), tcp, TeardownPolicy::Always).await {
            Ok((demuxed, specs)) => return stream(cfg, url, demuxed, specs, host, None).await,
            Err(e) => last_err = format!("{} ({})", e, if tcp { "TCP" } else { "UDP" }),
        }
    }
    Outcome::Failed(last_err, false)
}

/// `rtsp_http`: the HTTP handshake with the camera, then retina over the tunnel's loopback port
/// (TCP interleaved). The tunnel outlives this function until retina's connection closes, so the
/// TEARDOWN retina sends when the session is dropped still reaches the camera.
async fn tunnelled_session(
    cfg: &PullConfig,
    url: &url::Url,
    creds: Option<Credentials>,
    host: &dyn PullHost,
) -> Outcome {
    let basic = creds.as_ref().map(|c| (c.username.as_str(), c.password.as_str()));
    let tunnel = match crate::tunnel::open(url, basic, &user_agent(), cfg.connect_timeout).await {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("RTSP over HTTP: {e}"), false),
    };
    // TeardownPolicy::Auto: TEARDOWN once, on the tunnel; `Always` would retry on fresh
    // connections to the loopback port, which no longer leads anywhere (quirks::STALE_SESSIONS).
    match connect(cfg, tunnel.url(), creds, true, TeardownPolicy::Auto).await {
        Ok((demuxed, specs)) => stream(cfg, url, demuxed, specs, host, Some(&tunnel)).await,
        Err(e) => Outcome::Failed(with_tunnel_end(format!("{e} (RTSP over HTTP)"), Some(&tunnel)), false),
    }
}

/// Appends why the tunnel ended, if it has.
fn with_tunnel_end(why: String, tunnel: Option<&Tunnel>) -> String {
    match tunnel.and_then(Tunnel::end_reason) {
        Some(r) => format!("{why}; {r}"),
        None => why,
    }
}

async fn connect(
    cfg: &PullConfig,
    url: &url::Url,
    creds: Option<Credentials>,
    tcp: bool,
    teardown: TeardownPolicy,
) -> Result<(retina::client::Demuxed, Vec<(usize, StreamSpec)>), String> {
    let format = FrameFormat {
        h26x_framing: retina::codec::h26x::Framing::FourByteLength,
        // quirks::MISSING_PARAMETER_SETS: parameter sets with every keyframe, whatever the SDP
        // said; the builder takes them in band.
        parameter_set_insertion: ParameterSetInsertion::EachKeyFrame,
        aac_framing: retina::codec::aac::Framing::Raw,
    };
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent(user_agent())
        // quirks::STALE_SESSIONS
        .session_id(SessionIdPolicy::UseFirst)
        .teardown(teardown);
    let t = cfg.connect_timeout;
    let mut s = timeout(t, retina::client::Session::describe(url.clone(), opts))
        .await
        .map_err(|_| "DESCRIBE timed out".to_owned())?
        .map_err(|e| format!("DESCRIBE failed: {e}"))?;
    let (mut video, mut audio) = (None, None);
    for (i, st) in s.streams().iter().enumerate() {
        match (st.media(), st.encoding_name()) {
            ("video", "h264") if video.is_none() => video = Some((i, VideoCodec::H264)),
            ("video", "h265") if video.is_none() => video = Some((i, VideoCodec::H265)),
            ("audio", "mpeg4-generic") if audio.is_none() => audio = Some(i),
            _ => {}
        }
    }
    if video.is_none() && audio.is_none() {
        return Err("the camera offers no H.264, HEVC or AAC stream".into());
    }
    let mut specs = Vec::new();
    if let Some((i, codec)) = video {
        let clock = s.streams()[i].clock_rate_hz();
        specs.push((
            i,
            StreamSpec { codec: StreamCodec::Video { codec, params: ParamSets::default() }, clock_rate: clock },
        ));
    }
    if let Some(i) = audio {
        let st = &s.streams()[i];
        // The AudioSpecificConfig is known from the SDP already (retina parsed `config`).
        if let Some(ParametersRef::Audio(p)) = st.parameters() {
            let layout = AacLayout { size_length: 13, index_length: 3, index_delta_length: 3, frame_samples: 1024 };
            specs.push((
                i,
                StreamSpec {
                    codec: StreamCodec::Aac { config: Bytes::copy_from_slice(p.extra_data()), layout },
                    clock_rate: st.clock_rate_hz(),
                },
            ));
        }
    }
    for (i, _) in &specs {
        let transport = if tcp { Transport::Tcp(Default::default()) } else { Transport::Udp(Default::default()) };
        timeout(t, s.setup(*i, SetupOptions::default().transport(transport).frame_format(format)))
            .await
            .map_err(|_| "SETUP timed out".to_owned())?
            .map_err(|e| format!("SETUP failed: {e}"))?;
    }
    // quirks::IGNORE_BAD_RTCP: RTCP from unknown SSRCs is dropped, not fatal.
    let play = PlayOptions::default().unknown_rtcp_ssrc(UnknownRtcpSsrcPolicy::DropPackets);
    let playing = timeout(t, s.play(play))
        .await
        .map_err(|_| "PLAY timed out".to_owned())?
        .map_err(|e| format!("PLAY failed: {e}"))?;
    let demuxed = playing.demuxed().map_err(|e| format!("cannot demux: {e}"))?;
    Ok((demuxed, specs))
}

/// Splits 4-byte length-prefixed NAL units.
fn split_nals(data: &[u8]) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        out.push(Bytes::copy_from_slice(rest.get(4..4 + len)?));
        rest = &rest[4 + len..];
    }
    Some(out)
}

async fn stream(
    cfg: &PullConfig,
    url: &url::Url,
    mut demuxed: retina::client::Demuxed,
    specs: Vec<(usize, StreamSpec)>,
    host: &dyn PullHost,
    tunnel: Option<&Tunnel>,
) -> Outcome {
    let camera = url.host_str().unwrap_or("camera").to_owned();
    let grant = match host.begin(&camera) {
        Ok(g) => g,
        Err(PullRefused::Stopped) => return Outcome::Stopped,
        Err(PullRefused::Busy(why)) => return Outcome::Failed(why, false),
    };
    let n = specs.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
    let mut by_index: Vec<Option<StreamSpec>> = vec![None; n];
    for (i, s) in specs {
        by_index[i] = Some(s);
    }
    let mut builder = MediaBuilder::new(by_index);
    let mut media = grant.media;
    let stats = grant.stats;
    let mut delivered = false;
    let mut events = Vec::new();
    let (code, why) = loop {
        let item = match timeout(cfg.media_timeout, demuxed.next()).await {
            Err(_) => {
                break ("MPE_INGEST_MEDIA_TIMEOUT", format!("no media from the camera for {:?}", cfg.media_timeout));
            }
            Ok(None) => break ("MPE_CLIENT_DISCONNECTED", "the camera ended the session".to_owned()),
            Ok(Some(Err(e))) => break ("MPE_CLIENT_DISCONNECTED", format!("camera connection lost: {e}")),
            Ok(Some(Ok(item))) => item,
        };
        let now = Instant::now();
        match item {
            CodecItem::VideoFrame(f) => {
                stats.packets(1, u64::from(f.loss()), 0);
                let Some(nals) = split_nals(f.data()) else {
                    stats.packets(0, 0, 1);
                    continue;
                };
                let ts = f.timestamp().timestamp() as u32;
                builder.frame(f.stream_id(), ts, Frame::Video { nals, damaged: f.loss() > 0 }, now, &mut events);
            }
            CodecItem::AudioFrame(f) => {
                stats.packets(1, u64::from(f.loss()), 0);
                let ts = f.timestamp().timestamp() as u32;
                builder.frame(f.stream_id(), ts, Frame::Audio(Bytes::copy_from_slice(f.data())), now, &mut events);
            }
            CodecItem::Rtcp(r) => {
                if let Ok(srs) = crate::rtcp::sender_reports(r.raw()) {
                    for sr in srs {
                        builder.sender_report(r.stream_id(), sr.ntp_secs(), sr.rtp);
                        stats.sender_report();
                    }
                }
            }
            _ => {}
        }
        let mut closed = false;
        for e in events.drain(..) {
            stats.record(&e);
            delivered |= matches!(e, MediaEvent::Unit(_));
            let outcome = match e {
                MediaEvent::Unit(u) => media.send_unit(u),
                other => timeout(crate::CONTROL_WAIT, media.send_control(other)).await.unwrap_or(SendOutcome::Dropped),
            };
            closed |= outcome == SendOutcome::Closed;
        }
        if closed {
            // The event stopped (or another publisher took over): no End, no reconnect here;
            // the run's stop signal follows.
            host.end(grant.grant, "MPE_INGEST_STOPPED", "The live event stopped.");
            return Outcome::Stopped;
        }
    };
    let why = if code == "MPE_CLIENT_DISCONNECTED" { with_tunnel_end(why, tunnel) } else { why };
    builder.flush(&mut events);
    for e in events.drain(..) {
        stats.record(&e);
        if let MediaEvent::Unit(u) = e {
            media.send_unit(u);
        }
    }
    let _ = timeout(crate::CONTROL_WAIT, media.send_control(MediaEvent::End)).await;
    host.end(grant.grant, code, &why);
    Outcome::Failed(why, delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_credentials_and_backoff() {
        assert_eq!(PullMode::parse("TCP_UDP"), Some(PullMode::TcpUdp));
        assert_eq!(PullMode::parse("rtsp_http"), Some(PullMode::RtspHttp));
        assert_eq!(PullMode::parse("http"), None);
        let (u, c) = split_credentials("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/101").unwrap();
        assert_eq!(u.as_str(), "rtsp://10.0.0.5:554/Streaming/101");
        let c = c.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("admin", "p@ss"));
        assert!(split_credentials("rtsp://cam/x").unwrap().1.is_none());
        assert!(split_credentials("http://cam/x").is_err());
        let cfg = PullConfig::new("rtsp://cam/x".into(), PullMode::Tcp);
        let mut b = Duration::ZERO;
        let seq: Vec<u64> = (0..8)
            .map(|_| {
                b = next_backoff(b, &cfg);
                b.as_millis() as u64
            })
            .collect();
        assert_eq!(seq, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(split_nals(&[0, 0, 0, 2, 9, 9, 0, 0, 0, 1, 5]).unwrap().len(), 2);
        assert!(split_nals(&[0, 0, 0, 9, 1]).is_none());
    }
}
