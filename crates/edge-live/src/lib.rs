//! Live sessions: the in-memory view of which live events are Running and so accept an
//! encoder, found by their access token (the stream key) at ingest; each Running event's
//! packaging and recording [`pipeline`]; and what its ingest looks like now (for getStatus and
//! the console).
//!
//! The database is the source of truth for resources; this registry is rebuilt from it at
//! start-up (every Running event is registered again, so encoders can reconnect after a power
//! cut, and its recording continues). Ingest adapters (RTMP, SRT, RTSP) only talk to this
//! registry, never to the API.

pub mod meter;
pub mod pipeline;
pub mod presentation;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use edge_db::Db;
use edge_media::MediaSender;
use edge_model::{EncodingType, RtspPullMode, StreamingProtocol, Timestamp};
use edge_record::Recorder;

pub use pipeline::{EventMedia, PipelineHandle};

/// What ingest needs to know about a Running event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub event_id: String,
    pub event_name: String,
    pub access_token: String,
    pub protocol: StreamingProtocol,
    pub started: Timestamp,
    /// `input.keyFrameIntervalDuration`: the segment target.
    pub key_frame_interval: Option<Duration>,
    /// `input.accessControl.ip.allow` as (network, prefix length); empty = everyone.
    pub allow: Vec<(IpAddr, u8)>,
    /// SRT events: `input.srtPassphrase` (None: unencrypted) and `input.srtLatency`.
    pub srt_passphrase: Option<String>,
    pub srt_latency: Option<Duration>,
    /// RTSPPull events: the camera URL (credentials included) and `input.rtspPullMode`.
    pub rtsp_pull: Option<(String, RtspPullMode)>,
    /// LocalCapture events: the capture device id (`input.captureDevice`); no publisher may push
    /// to such an event.
    pub capture_device: Option<String>,
    /// `encoding.encodingType` and `encoding.keyFrameInterval` (transcoding events).
    pub encoding: EncodingType,
    pub encoding_key_frame_interval: Option<Duration>,
}

/// Decides which events get a front stage (the transcoder) in their pipeline.
pub trait FrontProvider: Send + Sync {
    fn front_for(&self, session: &LiveSession) -> Option<pipeline::FrontFactory>;
}

impl LiveSession {
    /// Whether the access control list admits this address. An empty list, or an entry of
    /// prefix 0, admits everyone (RMS's sample sends 0.0.0.0/0; Ravnur's demo sends `[]`).
    pub fn admits(&self, peer: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|(net, len)| in_network(peer, *net, *len))
    }
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => len == 0,
    }
}

/// Live numbers of an ingest session, provided by the protocol adapter.
pub trait IngestProbe: Send + Sync {
    /// Per-track status now.
    fn tracks(&self) -> Vec<TrackStatus>;
    /// Time since the last media unit arrived (None: nothing yet).
    fn last_media_age(&self) -> Option<Duration>;
    /// The transport's own counters, for protocols that have them (SRT).
    fn transport(&self) -> Option<TransportStatus> {
        None
    }
}

/// Packet-level health of an ingest connection (SRT's receiver statistics): what a technician
/// needs to tell a lossy link (retransmissions that arrived in time) from lost media (packets
/// given up on, which players see as glitches).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportStatus {
    pub protocol: &'static str,
    pub packets_received: u64,
    /// Packets detected missing, whether recovered later or not.
    pub packets_lost: u64,
    pub packets_retransmitted: u64,
    /// Packets given up on: too late for the configured latency, never recovered.
    pub packets_dropped: u64,
    pub decrypt_errors: u64,
    pub rtt_ms: f64,
    pub latency_ms: Option<u64>,
}

/// Ingest health as getStatus reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestStatus {
    /// `Running` or `Stopped`, as AMS's LiveEventStatus.state.
    pub state: &'static str,
    /// `Excellent`, `Good`, `Poor`, or empty while nothing is known.
    pub health: &'static str,
    pub descriptions: Vec<String>,
    pub last_updated: Timestamp,
    pub ingestion: Ingestion,
    pub tracks: Vec<TrackStatus>,
    /// The transcoder's numbers (encoder, speed against real time, dropped frames), if any.
    pub transcoding: Option<serde_json::Value>,
    /// The connected encoder's transport counters (SRT), if the protocol has them.
    pub transport: Option<TransportStatus>,
    /// The video as packaged: size, frame rate, keyframe interval.
    pub video: Option<meter::VideoInput>,
}

/// The current (or last) ingest session of an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ingestion {
    pub stream_name: String,
    pub begin: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// AMS result code, e.g. `MPE_CLIENT_TERMINATED_SESSION`; empty while ingesting.
    pub end_reason: String,
    pub interruptions: Vec<Interruption>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interruption {
    pub begin: Timestamp,
    pub end: Option<Timestamp>,
    pub reason: String,
}

/// Per-track ingest numbers (AMS `LiveEventTrackStatus`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackStatus {
    pub track_id: String,
    pub expected_bitrate: u64,
    pub incoming_bitrate: Option<u64>,
    /// Drift of media time against arrival time, e.g. "0 ms"; "n/a" without data.
    pub ingest_drift: String,
    pub requests_received: Option<u64>,
    pub requests_succeeded: Option<u64>,
    /// Media time of the newest unit, in `timescale`.
    pub last_timestamp: Option<i64>,
    pub timescale: u32,
    /// Timestamp discontinuities absorbed in this session.
    pub discontinuities: u64,
}

struct Publisher {
    grant: u64,
    name: String,
    probe: Arc<dyn IngestProbe>,
    cancel: Arc<AtomicBool>,
}

struct Entry {
    session: LiveSession,
    publisher: Option<Publisher>,
    ingestion: Ingestion,
    pipeline: Option<PipelineHandle>,
}

/// Why a publish was refused, with the reason for the log and the stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishRefusal {
    UnknownKey,
    AlreadyPublishing(String),
    AddressNotAllowed(String),
    NotRecording(String),
}

/// A granted publish: where its media goes.
pub struct PublishTicket {
    pub grant: u64,
    pub event_id: String,
    pub event_name: String,
    pub media: MediaSender,
}

#[derive(Clone, Default)]
pub struct LiveRegistry {
    inner: Arc<RwLock<HashMap<String, Entry>>>,
    recording: Option<(Arc<Db>, Recorder)>,
    grants: Arc<AtomicU64>,
    changes: Changes,
    front: Option<Arc<dyn FrontProvider>>,
}

/// Bumped whenever an event starts or stops (for [`LiveRegistry::subscribe`]).
#[derive(Clone)]
struct Changes(Arc<tokio::sync::watch::Sender<u64>>);

impl Default for Changes {
    fn default() -> Self {
        Changes(Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

/// The RMS message that tells players (and Ravnur's sample code) there is nothing to play yet.
pub const NO_MANIFEST: &str = "Live manifest is not available.";

/// A publisher silent this long is considered gone: a reconnecting encoder may take over
/// (encoders reconnect long before a dead TCP connection times out).
pub const STALE_PUBLISHER: Duration = Duration::from_secs(3);

impl LiveRegistry {
    /// A registry without media (no pipelines): for tests of the API alone.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry whose Running events package and record their media.
    pub fn with_recording(db: Arc<Db>, recorder: Recorder) -> Self {
        LiveRegistry { recording: Some((db, recorder)), ..Default::default() }
    }

    /// Events the provider selects (transcoding events) get its stage in front of the packager.
    pub fn with_front(mut self, provider: Arc<dyn FrontProvider>) -> Self {
        self.front = Some(provider);
        self
    }

    /// Registers a Running event (starting its pipeline): from now on its stream key is
    /// accepted at ingest.
    pub fn start(&self, session: LiveSession) -> Result<(), edge_db::DbError> {
        let pipeline = match &self.recording {
            Some((db, rec)) => Some(pipeline::spawn(
                pipeline::PipelineConfig {
                    event_id: session.event_id.clone(),
                    event_name: session.event_name.clone(),
                    key_frame_interval: session.key_frame_interval,
                    front: self.front.as_ref().and_then(|f| f.front_for(&session)),
                },
                db.clone(),
                rec.clone(),
            )?),
            None => None,
        };
        let mut m = self.inner.write().expect("registry poisoned");
        m.insert(
            session.event_id.clone(),
            Entry { session, publisher: None, ingestion: Ingestion::default(), pipeline },
        );
        drop(m);
        self.changes.0.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Wakes up whenever an event starts or stops (e.g. to start and stop RTSP pullers).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.0.subscribe()
    }

    /// The Running events.
    pub fn sessions(&self) -> Vec<LiveSession> {
        self.inner.read().expect("registry poisoned").values().map(|e| e.session.clone()).collect()
    }

    /// Unregisters an event: its publisher is cut off and its pipeline finishes (open segments
    /// are recorded) before this returns. Returns whether it was registered.
    pub async fn stop(&self, event_id: &str) -> bool {
        let entry = self.inner.write().expect("registry poisoned").remove(event_id);
        let Some(entry) = entry else { return false };
        self.changes.0.send_modify(|g| *g += 1);
        if let Some(p) = &entry.publisher {
            p.cancel.store(true, Ordering::Relaxed);
        }
        if let Some(p) = entry.pipeline {
            p.finish().await;
        }
        true
    }

    /// When the event's current run started (distinguishes runs of the same event).
    pub fn started(&self, event_id: &str) -> Option<Timestamp> {
        self.inner.read().expect("registry poisoned").get(event_id).map(|e| e.session.started)
    }

    pub fn is_running(&self, event_id: &str) -> bool {
        self.inner.read().expect("registry poisoned").contains_key(event_id)
    }

    /// The Running event whose stream key this is, if any.
    pub fn by_token(&self, token: &str) -> Option<LiveSession> {
        let m = self.inner.read().expect("registry poisoned");
        m.values().find(|e| e.session.access_token == token).map(|e| e.session.clone())
    }

    /// The live media of a Running event (for delivery).
    pub fn media(&self, event_id: &str) -> Option<Arc<EventMedia>> {
        let m = self.inner.read().expect("registry poisoned");
        m.get(event_id).and_then(|e| e.pipeline.as_ref()).map(|p| p.media.clone())
    }

    /// Decides a publish: the key must select a Running event, the peer must pass its access
    /// control, and the event must have no live publisher. A publisher silent for
    /// [`STALE_PUBLISHER`] is replaced (its sender is cut off), so an encoder that reconnects
    /// after a network cut is back on air at once instead of after a TCP timeout.
    pub fn authorize_publish(
        &self,
        token: &str,
        peer: IpAddr,
        name: String,
        probe: Arc<dyn IngestProbe>,
    ) -> Result<PublishTicket, PublishRefusal> {
        let mut m = self.inner.write().expect("registry poisoned");
        let e = m
            .values_mut()
            .find(|e| e.session.access_token == token && e.session.capture_device.is_none())
            .ok_or(PublishRefusal::UnknownKey)?;
        if !e.session.admits(peer) {
            return Err(PublishRefusal::AddressNotAllowed(e.session.event_name.clone()));
        }
        if let Some(p) = &e.publisher {
            let stale = p.probe.last_media_age().is_none_or(|age| age >= STALE_PUBLISHER);
            if !stale {
                return Err(PublishRefusal::AlreadyPublishing(e.session.event_name.clone()));
            }
            tracing::warn!(event = %e.session.event_name, old = %p.name, new = %name, "replacing a silent publisher with a reconnecting one");
            p.cancel.store(true, Ordering::Relaxed);
        }
        let media = match &e.pipeline {
            Some(p) => p.sender(),
            None if self.recording.is_none() => edge_media::queue(1).0,
            None => return Err(PublishRefusal::NotRecording(e.session.event_name.clone())),
        };
        let grant = self.grants.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Timestamp::now();
        if let Some(last) = e.ingestion.interruptions.last_mut().filter(|i| i.end.is_none()) {
            last.end = Some(now);
        }
        if e.ingestion.begin.is_none() {
            e.ingestion.begin = Some(now);
        }
        e.ingestion.stream_name = name.clone();
        e.ingestion.end = None;
        e.ingestion.end_reason.clear();
        e.publisher = Some(Publisher { grant, name, probe, cancel: media.canceller() });
        Ok(PublishTicket {
            grant,
            event_id: e.session.event_id.clone(),
            event_name: e.session.event_name.clone(),
            media,
        })
    }

    /// A granted publish ended (only the current grant frees the slot: a replaced publisher's
    /// late end changes nothing).
    pub fn publish_ended(&self, event_id: &str, grant: u64, reason: &str) {
        let mut m = self.inner.write().expect("registry poisoned");
        let Some(e) = m.get_mut(event_id) else { return };
        if e.publisher.as_ref().is_none_or(|p| p.grant != grant) {
            return;
        }
        let now = Timestamp::now();
        e.publisher = None;
        e.ingestion.end = Some(now);
        e.ingestion.end_reason = reason.to_owned();
        e.ingestion.interruptions.push(Interruption { begin: now, end: None, reason: reason.to_owned() });
    }

    /// Names of the events whose pipeline is stuck (see [`PipelineHandle::is_stuck`]).
    pub fn stuck_pipelines(&self, limit: Duration) -> Vec<String> {
        let m = self.inner.read().expect("registry poisoned");
        m.values()
            .filter(|e| e.pipeline.as_ref().is_some_and(|p| p.is_stuck(limit)))
            .map(|e| e.session.event_name.clone())
            .collect()
    }

    pub fn running_count(&self) -> usize {
        self.inner.read().expect("registry poisoned").len()
    }

    pub fn status(&self, event_id: &str) -> IngestStatus {
        let m = self.inner.read().expect("registry poisoned");
        let now = Timestamp::now();
        let Some(e) = m.get(event_id) else {
            return IngestStatus {
                state: "Stopped",
                health: "",
                descriptions: vec!["The live event is not running.".into(), NO_MANIFEST.into()],
                last_updated: now,
                ingestion: Ingestion::default(),
                tracks: Vec::new(),
                transcoding: None,
                transport: None,
                video: None,
            };
        };
        let ready = e.pipeline.as_ref().is_some_and(|p| p.media.is_ready());
        let mut transport = None;
        let capture = e.session.capture_device.is_some();
        let (mut health, mut descriptions, tracks) = match &e.publisher {
            // A capture event has no publisher: its input is the device, reported by the front stage.
            None if capture => ("Poor", Vec::new(), Vec::new()),
            None => (
                "Poor",
                vec![format!(
                    "Waiting for the encoder: no {} input is connected{}.",
                    e.session.protocol,
                    e.ingestion.end.map(|t| format!(" (the last one left at {t})")).unwrap_or_default()
                )],
                Vec::new(),
            ),
            Some(p) => {
                let tracks = p.probe.tracks();
                let age = p.probe.last_media_age();
                let (mut health, text) = assess(&tracks, age);
                let mut lines = vec![format!("Receiving from {}. {text}", p.name)];
                transport = p.probe.transport();
                if let Some(t) = transport.as_ref().filter(|t| t.packets_dropped > 0) {
                    // Media was lost, not just delayed: players see glitches.
                    if health == "Excellent" {
                        health = "Good";
                    }
                    lines.push(format!(
                        "{} packets were lost for good ({} retransmitted in time){}: the link loses more than the latency can recover; raise the latency or fix the link.",
                        t.packets_dropped,
                        t.packets_retransmitted,
                        t.latency_ms.map(|l| format!(" at {l} ms {} latency", t.protocol)).unwrap_or_default(),
                    ));
                }
                (health, lines, tracks)
            }
        };
        let mut tracks = tracks;
        let mut transcoding = None;
        if let Some(front) = e.pipeline.as_ref().and_then(|p| p.front.as_ref()) {
            let (lines, outputs, detail) = front.status();
            descriptions.extend(lines);
            if capture {
                let running = detail.as_ref().and_then(|d| d["capture"]["state"].as_str()) == Some("running");
                if running && !outputs.is_empty() {
                    health = assess(&outputs, Some(Duration::ZERO)).0;
                }
            }
            tracks.extend(outputs);
            transcoding = detail;
        }
        if !ready {
            descriptions.push(NO_MANIFEST.into());
        }
        IngestStatus {
            state: "Running",
            health,
            descriptions,
            last_updated: now,
            ingestion: e.ingestion.clone(),
            tracks,
            transcoding,
            transport,
            video: e.pipeline.as_ref().and_then(|p| p.media.video_input()),
        }
    }
}

/// AMS's health rule: Excellent at >= 75 % of the expected bitrate without errors, Good at
/// >= 20 %, Poor otherwise (and when media stopped arriving).
fn assess(tracks: &[TrackStatus], age: Option<Duration>) -> (&'static str, String) {
    if age.is_none_or(|a| a > Duration::from_secs(5)) {
        return ("Poor", "No media has arrived for more than 5 seconds.".into());
    }
    let mut worst: f64 = 1.0;
    for t in tracks {
        if let (Some(incoming), true) = (t.incoming_bitrate, t.expected_bitrate > 0) {
            worst = worst.min(incoming as f64 / t.expected_bitrate as f64);
        }
    }
    if worst >= 0.75 {
        ("Excellent", "No issues with ingest.".into())
    } else if worst >= 0.2 {
        ("Good", format!("Incoming bitrate is {:.0} % of what the encoder declared.", worst * 100.0))
    } else {
        ("Poor", format!("Incoming bitrate is only {:.0} % of what the encoder declared.", worst * 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Probe(Option<Duration>);
    impl IngestProbe for Probe {
        fn tracks(&self) -> Vec<TrackStatus> {
            Vec::new()
        }
        fn last_media_age(&self) -> Option<Duration> {
            self.0
        }
    }

    fn session(id: &str, token: &str, allow: Vec<(IpAddr, u8)>) -> LiveSession {
        LiveSession {
            event_id: id.into(),
            event_name: id.into(),
            access_token: token.into(),
            protocol: StreamingProtocol::Rtmp,
            started: Timestamp::now(),
            key_frame_interval: None,
            allow,
            srt_passphrase: None,
            srt_latency: None,
            rtsp_pull: None,
            capture_device: None,
            encoding: EncodingType::None,
            encoding_key_frame_interval: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn tokens_resolve_only_while_running() {
        let r = LiveRegistry::new();
        let mut changes = r.subscribe();
        assert!(r.by_token("k1").is_none());
        r.start(session("e1", "k1", vec![])).unwrap();
        assert!(changes.has_changed().unwrap(), "a start wakes subscribers");
        changes.mark_unchanged();
        assert_eq!(r.sessions().len(), 1);
        assert_eq!(r.by_token("k1").unwrap().event_id, "e1");
        assert!(r.by_token("k2").is_none());
        assert!(r.stop("e1").await);
        assert!(changes.has_changed().unwrap(), "a stop wakes subscribers");
        assert!(r.sessions().is_empty());
        assert!(!r.stop("e1").await);
        assert!(r.by_token("k1").is_none());
    }

    #[test]
    fn access_control_lists() {
        let s = session("e", "k", vec![(ip("10.1.0.0"), 16), (ip("2001:db8::"), 32)]);
        assert!(s.admits(ip("10.1.2.3")));
        assert!(!s.admits(ip("10.2.0.1")));
        assert!(s.admits(ip("::ffff:10.1.9.9")), "IPv4-mapped addresses match IPv4 networks");
        assert!(s.admits(ip("2001:db8:1::5")));
        assert!(!s.admits(ip("2001:db9::1")));
        assert!(session("e", "k", vec![]).admits(ip("192.0.2.1")));
        assert!(session("e", "k", vec![(ip("0.0.0.0"), 0)]).admits(ip("192.0.2.1")));
        assert!(session("e", "k", vec![(ip("192.0.2.7"), 32)]).admits(ip("192.0.2.7")));
    }

    #[test]
    fn one_live_publisher_per_event_and_stale_ones_are_replaced() {
        let r = LiveRegistry::new();
        r.start(session("e1", "k1", vec![(ip("10.0.0.0"), 8)])).unwrap();
        assert_eq!(
            r.authorize_publish("nope", ip("10.0.0.1"), "x".into(), Arc::new(Probe(None))).err(),
            Some(PublishRefusal::UnknownKey)
        );
        assert!(matches!(
            r.authorize_publish("k1", ip("192.168.0.1"), "x".into(), Arc::new(Probe(None))),
            Err(PublishRefusal::AddressNotAllowed(_))
        ));
        let first =
            r.authorize_publish("k1", ip("10.0.0.1"), "enc-a".into(), Arc::new(Probe(Some(Duration::ZERO)))).unwrap();
        assert!(matches!(
            r.authorize_publish("k1", ip("10.0.0.2"), "enc-b".into(), Arc::new(Probe(None))),
            Err(PublishRefusal::AlreadyPublishing(_))
        ));
        let s = r.status("e1");
        assert_eq!(s.ingestion.stream_name, "enc-a");
        r.publish_ended("e1", first.grant, "MPE_CLIENT_TERMINATED_SESSION");
        let second = r
            .authorize_publish("k1", ip("10.0.0.2"), "enc-b".into(), Arc::new(Probe(Some(Duration::from_secs(10)))))
            .unwrap();
        // enc-b went silent: a reconnect takes over, and enc-b's late end changes nothing.
        let third =
            r.authorize_publish("k1", ip("10.0.0.2"), "enc-b2".into(), Arc::new(Probe(Some(Duration::ZERO)))).unwrap();
        assert!(second.media.is_closed(), "the replaced publisher is cut off");
        r.publish_ended("e1", second.grant, "MPE_CLIENT_TERMINATED_SESSION");
        assert_eq!(r.status("e1").ingestion.stream_name, "enc-b2");
        assert!(r.status("e1").ingestion.end.is_none());
        r.publish_ended("e1", third.grant, "MPE_CLIENT_TERMINATED_SESSION");
        let s = r.status("e1");
        assert!(s.ingestion.end.is_some());
        assert_eq!(s.ingestion.interruptions.len(), 2);
    }

    /// A healthy track behind an SRT link with the given counters.
    struct SrtLink(TransportStatus);
    impl IngestProbe for SrtLink {
        fn tracks(&self) -> Vec<TrackStatus> {
            vec![TrackStatus {
                track_id: "video".into(),
                expected_bitrate: 1000,
                incoming_bitrate: Some(1000),
                ingest_drift: "0 ms".into(),
                requests_received: Some(10),
                requests_succeeded: Some(10),
                last_timestamp: Some(0),
                timescale: 90_000,
                discontinuities: 0,
            }]
        }
        fn last_media_age(&self) -> Option<Duration> {
            Some(Duration::ZERO)
        }
        fn transport(&self) -> Option<TransportStatus> {
            Some(self.0.clone())
        }
    }

    #[test]
    fn transport_counters_reach_the_status_and_real_loss_lowers_health() {
        let r = LiveRegistry::new();
        r.start(session("e1", "k1", vec![])).unwrap();
        let link =
            TransportStatus { protocol: "SRT", packets_retransmitted: 40, latency_ms: Some(120), ..Default::default() };
        let g = r.authorize_publish("k1", ip("10.0.0.1"), "srt".into(), Arc::new(SrtLink(link.clone()))).unwrap();
        let s = r.status("e1");
        assert_eq!(s.transport.as_ref(), Some(&link));
        assert_eq!(s.health, "Excellent", "retransmissions that arrived in time are not loss");
        r.publish_ended("e1", g.grant, "MPE_CLIENT_TERMINATED_SESSION");
        let lossy = TransportStatus { packets_dropped: 7, ..link };
        r.authorize_publish("k1", ip("10.0.0.1"), "srt".into(), Arc::new(SrtLink(lossy))).unwrap();
        let s = r.status("e1");
        assert_eq!(s.health, "Good");
        assert!(s.descriptions.iter().any(|d| d.contains("7 packets were lost") && d.contains("120 ms SRT latency")));
    }

    #[test]
    fn status_without_a_publisher_says_what_is_missing() {
        let r = LiveRegistry::new();
        assert_eq!(r.status("e1").state, "Stopped");
        r.start(session("e1", "k1", vec![])).unwrap();
        let s = r.status("e1");
        assert_eq!((s.state, s.health), ("Running", "Poor"));
        assert!(s.descriptions.iter().any(|d| d == NO_MANIFEST));
        assert!(s.descriptions[0].contains("Waiting for the encoder"));
    }
}
