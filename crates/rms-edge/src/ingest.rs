//! The appliance's side of RTMP ingest: who may publish (the live registry decides: key,
//! access control, one live publisher per event), what getStatus sees of a session, and the
//! AMS stream events each connection leaves behind.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_db::{Db, StreamEventRow};
use edge_live::{IngestProbe, LiveRegistry, PublishRefusal, TrackStatus};
use edge_media::TrackKind;
use edge_model::{LiveEventState, Timestamp};
use edge_rtmp::{
    EndReason, IngestStats, InvalidConnection, PublishAuthorizer, PublishEnded, PublishGrant, PublishRequest, Refusal,
};
use serde_json::{Value, json};

/// How many stream events are kept per live event.
const STREAM_EVENTS_KEPT: i64 = 1000;

/// getStatus's view of an RTMP session.
struct RtmpProbe(Arc<IngestStats>);

impl IngestProbe for RtmpProbe {
    fn tracks(&self) -> Vec<TrackStatus> {
        let s = self.0.snapshot(Instant::now());
        let meta = s.metadata.unwrap_or_default();
        s.tracks
            .iter()
            .map(|t| {
                let declared = match t.kind {
                    TrackKind::Video => meta.video_data_rate_kbps,
                    TrackKind::Audio => meta.audio_data_rate_kbps,
                }
                .map(|k| u64::from(k) * 1000)
                .filter(|b| *b > 0);
                TrackStatus {
                    track_id: t.kind.as_str().to_owned(),
                    expected_bitrate: declared.unwrap_or(t.bitrate),
                    incoming_bitrate: Some(t.bitrate),
                    ingest_drift: t.drift_ms.map(|d| format!("{d} ms")).unwrap_or_else(|| "n/a".into()),
                    requests_received: Some(t.frames),
                    requests_succeeded: Some(t.frames),
                    last_timestamp: t.last_dts,
                    timescale: t.timescale,
                    discontinuities: s.discontinuities,
                }
            })
            .collect()
    }

    fn last_media_age(&self) -> Option<Duration> {
        let now = Instant::now();
        self.0
            .snapshot(now)
            .tracks
            .iter()
            .filter_map(|t| t.last_arrival)
            .map(|a| now.saturating_duration_since(a))
            .min()
    }
}

/// Appends a stream event off the caller's task (a database write waits for fsync).
pub(crate) fn append_stream_event(db: &Arc<Db>, event_id: String, event_type: &str, level: &str, data: Value) {
    let db = db.clone();
    let row =
        StreamEventRow { time: Timestamp::now(), event_type: event_type.to_owned(), level: level.to_owned(), data };
    tokio::task::spawn_blocking(move || {
        if let Err(e) = db.stream_event_append(&event_id, &row, STREAM_EVENTS_KEPT) {
            tracing::warn!("cannot record a stream event: {e}");
        }
    });
}

pub struct RtmpGlue {
    live: LiveRegistry,
    db: Arc<Db>,
    /// connection id -> (event id, registry grant), to end the right grant.
    grants: Mutex<HashMap<u64, (String, u64)>>,
}

/// AMS shows remote addresses truncated (privacy): the last IPv4 octet / IPv6 groups hidden.
fn truncated_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.x", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:x", s[0], s[1], s[2])
        }
    }
}

impl RtmpGlue {
    pub fn new(live: LiveRegistry, db: Arc<Db>) -> Self {
        RtmpGlue { live, db, grants: Mutex::new(HashMap::new()) }
    }

    /// Appends a stream event off the connection task (a database write waits for fsync).
    fn stream_event(&self, event_id: String, event_type: &str, level: &str, data: Value) {
        append_stream_event(&self.db, event_id, event_type, level, data);
    }

    /// For a refused key: is it an event that exists but is not Running?
    fn stopped_event_name(&self, key: &str) -> Option<(String, String, LiveEventState)> {
        match self.db.live_event_by_token(key) {
            Ok(Some(ev)) if ev.state != LiveEventState::Running => Some((ev.id, ev.name, ev.state)),
            _ => None,
        }
    }
}

fn connection_data(peer: SocketAddr, code: &str, message: &str) -> Value {
    json!({
        "remoteIp": truncated_ip(peer.ip()),
        "remotePort": peer.port().to_string(),
        "resultCode": code,
        "resultMessage": message,
    })
}

impl PublishAuthorizer for RtmpGlue {
    fn authorize(&self, req: &PublishRequest) -> Result<PublishGrant, Refusal> {
        let stats = Arc::new(IngestStats::new());
        let name = req.stream_name.clone().unwrap_or_else(|| "default".into());
        match self.live.authorize_publish(&req.stream_key, req.peer, name.clone(), Arc::new(RtmpProbe(stats.clone()))) {
            Ok(t) => {
                self.grants.lock().expect("poisoned").insert(req.connection_id, (t.event_id.clone(), t.grant));
                tracing::info!(event = %t.event_name, peer = %req.peer, secure = req.secure, "encoder connected");
                self.stream_event(
                    t.event_id.clone(),
                    "StreamEvent/BeginIngest",
                    "Information",
                    json!({
                        "streamName": name,
                        "remoteIp": truncated_ip(req.peer),
                        "resultCode": "S_OK",
                        "resultMessage": if req.secure { "RTMPS publish accepted" } else { "RTMP publish accepted" },
                    }),
                );
                Ok(PublishGrant { event_id: t.event_id, event_name: t.event_name, media: t.media, stats })
            }
            Err(PublishRefusal::UnknownKey) => match self.stopped_event_name(&req.stream_key) {
                Some((_, name, _)) => Err(Refusal::NotRunning(name)),
                None => Err(Refusal::UnknownKey),
            },
            Err(PublishRefusal::AlreadyPublishing(n)) => Err(Refusal::AlreadyPublishing(n)),
            Err(PublishRefusal::AddressNotAllowed(_)) => Err(Refusal::AddressNotAllowed),
            Err(PublishRefusal::NotRecording(n)) => {
                Err(Refusal::Other(format!("live event {n} has no media pipeline")))
            }
        }
    }

    fn invalid_connection(&self, c: &InvalidConnection) {
        // Attach the event when the connection got far enough to name one.
        let event = c
            .event_id
            .clone()
            .or_else(|| c.stream_key.as_deref().and_then(|k| self.live.by_token(k)).map(|s| s.event_id))
            .or_else(|| c.stream_key.as_deref().and_then(|k| self.stopped_event_name(k)).map(|(id, _, _)| id));
        if let Some(event_id) = event {
            let code = match &c.refusal {
                Refusal::AddressNotAllowed => "MPE_INGEST_IP_NOT_ALLOWED",
                Refusal::NotRunning(_) => "MPE_INGEST_CHANNEL_NOT_RUNNING",
                Refusal::AlreadyPublishing(_) => "MPE_INGEST_STREAM_ALREADY_PUBLISHED",
                Refusal::UnsupportedMedia(_) | Refusal::InvalidMedia(_) => "MPE_INGEST_CODEC_NOT_SUPPORTED",
                _ => "MPE_INGEST_CONNECTION_REFUSED",
            };
            self.stream_event(
                event_id,
                "StreamEvent/InvalidConnection",
                "Error",
                connection_data(c.peer, code, &c.refusal.to_string()),
            );
        }
    }

    fn publish_ended(&self, e: &PublishEnded) {
        let Some((event_id, grant)) = self.grants.lock().expect("poisoned").remove(&e.connection_id) else { return };
        let (code, message) = match &e.reason {
            EndReason::Unpublished => ("MPE_CLIENT_TERMINATED_SESSION", "The encoder stopped publishing.".to_owned()),
            EndReason::Disconnected(why) => ("MPE_CLIENT_DISCONNECTED", format!("The connection closed: {why}")),
            EndReason::Idle(d) => {
                ("MPE_INGEST_MEDIA_TIMEOUT", format!("No media for {} s: disconnected.", d.as_secs()))
            }
            EndReason::Shutdown => ("MPE_SERVER_SHUTDOWN", "The appliance is shutting down.".to_owned()),
            EndReason::ConsumerGone => {
                ("MPE_INGEST_STOPPED", "The live event stopped, or a reconnecting encoder took over.".to_owned())
            }
            EndReason::Refused(r) => ("MPE_INGEST_STREAM_REFUSED", r.to_string()),
            EndReason::Aborted => ("MPE_INGEST_ABORTED", "The session ended abnormally.".to_owned()),
        };
        tracing::info!(event = %e.event_name, peer = %e.peer, reason = %message, "encoder disconnected");
        self.live.publish_ended(&event_id, grant, code);
        self.stream_event(event_id, "StreamEvent/EndIngest", "Information", connection_data(e.peer, code, &message));
    }
}

/// getStatus's view of an SRT session.
struct SrtProbe(Arc<edge_srt::SrtStats>);

impl IngestProbe for SrtProbe {
    fn tracks(&self) -> Vec<TrackStatus> {
        let s = self.0.snapshot(Instant::now());
        s.tracks
            .iter()
            .map(|t| TrackStatus {
                track_id: t.kind.as_str().to_owned(),
                expected_bitrate: t.bitrate,
                incoming_bitrate: Some(t.bitrate),
                ingest_drift: t.drift_ms.map(|d| format!("{d} ms")).unwrap_or_else(|| "n/a".into()),
                requests_received: Some(t.frames),
                requests_succeeded: Some(t.frames),
                last_timestamp: t.last_dts,
                timescale: t.timescale,
                discontinuities: 0,
            })
            .collect()
    }

    fn last_media_age(&self) -> Option<Duration> {
        self.0.last_media_age(Instant::now())
    }

    fn transport(&self) -> Option<edge_live::TransportStatus> {
        let s = self.0.snapshot(Instant::now());
        let t = &s.transport;
        Some(edge_live::TransportStatus {
            protocol: "SRT",
            packets_received: t.packets,
            packets_lost: t.lost,
            packets_retransmitted: t.retransmitted,
            packets_dropped: t.dropped,
            decrypt_errors: t.decrypt_errors,
            rtt_ms: t.rtt.as_secs_f64() * 1000.0,
            latency_ms: s.latency.map(|l| l.as_millis() as u64),
        })
    }
}

/// The appliance's side of SRT ingest: stream id → event (with its passphrase), then the same
/// registry decisions and stream events as RTMP.
pub struct SrtGlue {
    rtmp: RtmpGlue,
}

impl SrtGlue {
    pub fn new(live: LiveRegistry, db: Arc<Db>) -> Self {
        SrtGlue { rtmp: RtmpGlue::new(live, db) }
    }
}

impl edge_srt::SrtAuthorizer for SrtGlue {
    fn lookup(&self, req: &edge_srt::SrtRequest) -> Result<edge_srt::SrtEventSettings, edge_srt::Refusal> {
        let target = req.target.as_ref().ok_or(edge_srt::Refusal::MissingStreamId)?;
        let candidates: Vec<&str> = target.candidates().collect();
        for key in &candidates {
            if let Some(s) = self.rtmp.live.by_token(key) {
                if s.protocol != edge_model::StreamingProtocol::Srt {
                    return Err(edge_srt::Refusal::Other(format!(
                        "live event {} takes {} input, not SRT",
                        s.event_name, s.protocol
                    )));
                }
                if !s.admits(req.peer.ip()) {
                    return Err(edge_srt::Refusal::AddressNotAllowed);
                }
                return Ok(edge_srt::SrtEventSettings {
                    key: key.to_string(),
                    event_id: s.event_id,
                    event_name: s.event_name,
                    passphrase: s.srt_passphrase,
                    key_length: None,
                    latency: s.srt_latency,
                });
            }
        }
        match candidates.iter().find_map(|k| self.rtmp.stopped_event_name(k)) {
            Some((_, name, _)) => Err(edge_srt::Refusal::NotRunning(name)),
            None => Err(edge_srt::Refusal::UnknownStreamId),
        }
    }

    fn authorize(
        &self,
        req: &edge_srt::SrtRequest,
        ev: &edge_srt::SrtEventSettings,
    ) -> Result<edge_srt::SrtGrant, edge_srt::Refusal> {
        let stats = Arc::new(edge_srt::SrtStats::new());
        let name = req.target.as_ref().and_then(|t| t.stream_name.clone()).unwrap_or_else(|| "default".into());
        match self.rtmp.live.authorize_publish(&ev.key, req.peer.ip(), name.clone(), Arc::new(SrtProbe(stats.clone())))
        {
            Ok(t) => {
                self.rtmp.grants.lock().expect("poisoned").insert(req.connection_id, (t.event_id.clone(), t.grant));
                tracing::info!(event = %t.event_name, peer = %req.peer, "SRT encoder connected");
                self.rtmp.stream_event(
                    t.event_id.clone(),
                    "StreamEvent/BeginIngest",
                    "Information",
                    json!({"streamName": name, "remoteIp": truncated_ip(req.peer.ip()), "resultCode": "S_OK", "resultMessage": "SRT publish accepted"}),
                );
                Ok(edge_srt::SrtGrant { event_id: t.event_id, event_name: t.event_name, media: t.media, stats })
            }
            Err(PublishRefusal::UnknownKey) => Err(edge_srt::Refusal::UnknownStreamId),
            Err(PublishRefusal::AlreadyPublishing(n)) => Err(edge_srt::Refusal::AlreadyPublishing(n)),
            Err(PublishRefusal::AddressNotAllowed(_)) => Err(edge_srt::Refusal::AddressNotAllowed),
            Err(PublishRefusal::NotRecording(n)) => {
                Err(edge_srt::Refusal::Other(format!("live event {n} has no media pipeline")))
            }
        }
    }

    fn invalid_connection(&self, c: &edge_srt::InvalidConnection) {
        let event = c.event_id.clone().or_else(|| {
            let target = c.stream_id.as_deref().and_then(|s| edge_srt::parse_stream_id(s).ok())?;
            target.candidates().find_map(|k| self.rtmp.live.by_token(k)).map(|s| s.event_id)
        });
        if let Some(event_id) = event {
            let code =
                if c.refusal.is_passphrase() { "MPE_INGEST_SRT_PASSPHRASE" } else { "MPE_INGEST_CONNECTION_REFUSED" };
            self.rtmp.stream_event(
                event_id,
                "StreamEvent/InvalidConnection",
                "Error",
                connection_data(c.peer, code, &c.refusal.to_string()),
            );
        }
    }

    fn publish_ended(&self, e: &edge_srt::PublishEnded) {
        let Some((event_id, grant)) = self.rtmp.grants.lock().expect("poisoned").remove(&e.connection_id) else {
            return;
        };
        let (code, message) = match &e.reason {
            edge_srt::EndReason::Disconnected(why) => {
                ("MPE_CLIENT_DISCONNECTED", format!("The SRT connection closed: {why}"))
            }
            edge_srt::EndReason::Idle(d) => {
                ("MPE_INGEST_MEDIA_TIMEOUT", format!("No media for {} s: disconnected.", d.as_secs()))
            }
            edge_srt::EndReason::Shutdown => ("MPE_SERVER_SHUTDOWN", "The appliance is shutting down.".to_owned()),
            edge_srt::EndReason::ConsumerGone => {
                ("MPE_INGEST_STOPPED", "The live event stopped, or a reconnecting encoder took over.".to_owned())
            }
            edge_srt::EndReason::Refused(r) => ("MPE_INGEST_STREAM_REFUSED", r.to_string()),
        };
        tracing::info!(event = %e.event_name, peer = %e.peer, reason = %message, "SRT encoder disconnected");
        self.rtmp.live.publish_ended(&event_id, grant, code);
        self.rtmp.stream_event(
            event_id,
            "StreamEvent/EndIngest",
            "Information",
            connection_data(e.peer, code, &message),
        );
    }
}

/// getStatus's view of an RTSP session (push or pull).
struct RtspProbe(Arc<edge_rtsp::RtspStats>);

impl IngestProbe for RtspProbe {
    fn tracks(&self) -> Vec<TrackStatus> {
        let s = self.0.snapshot(Instant::now());
        s.tracks
            .iter()
            .map(|t| TrackStatus {
                track_id: t.kind.as_str().to_owned(),
                expected_bitrate: t.bitrate,
                incoming_bitrate: Some(t.bitrate),
                ingest_drift: t.drift_ms.map(|d| format!("{d} ms")).unwrap_or_else(|| "n/a".into()),
                requests_received: Some(s.rtp_packets),
                requests_succeeded: Some(s.rtp_packets.saturating_sub(s.bad_packets)),
                last_timestamp: t.last_dts,
                timescale: t.timescale,
                discontinuities: s.discontinuities,
            })
            .collect()
    }

    fn last_media_age(&self) -> Option<Duration> {
        self.0.last_media_age(Instant::now())
    }
}

/// The appliance's side of RTSP push: the token in the path → a Running RTSPPush event, then
/// the same registry decisions and stream events as RTMP.
pub struct RtspGlue {
    rtmp: RtmpGlue,
}

impl RtspGlue {
    pub fn new(live: LiveRegistry, db: Arc<Db>) -> Self {
        RtspGlue { rtmp: RtmpGlue::new(live, db) }
    }
}

impl edge_rtsp::RtspAuthorizer for RtspGlue {
    fn authorize(&self, req: &edge_rtsp::PublishRequest) -> Result<edge_rtsp::PublishGrant, edge_rtsp::Refusal> {
        use edge_rtsp::Refusal;
        let Some(s) = self.rtmp.live.by_token(&req.token) else {
            return Err(match self.rtmp.stopped_event_name(&req.token) {
                Some((_, name, _)) => Refusal::NotRunning(name),
                None => Refusal::UnknownToken,
            });
        };
        if s.protocol != edge_model::StreamingProtocol::RtspPush {
            return Err(Refusal::Other(format!(
                "live event {} takes {} input, not RTSP push",
                s.event_name, s.protocol
            )));
        }
        let stats = Arc::new(edge_rtsp::RtspStats::new());
        let probe = Arc::new(RtspProbe(stats.clone()));
        match self.rtmp.live.authorize_publish(&req.token, req.peer.ip(), "rtsp".into(), probe) {
            Ok(t) => {
                self.rtmp.grants.lock().expect("poisoned").insert(req.connection_id, (t.event_id.clone(), t.grant));
                tracing::info!(event = %t.event_name, peer = %req.peer, "RTSP encoder connected");
                self.rtmp.stream_event(
                    t.event_id.clone(),
                    "StreamEvent/BeginIngest",
                    "Information",
                    json!({"streamName": "rtsp", "remoteIp": truncated_ip(req.peer.ip()), "resultCode": "S_OK", "resultMessage": "RTSP push (ANNOUNCE) accepted"}),
                );
                Ok(edge_rtsp::PublishGrant { event_id: t.event_id, event_name: t.event_name, media: t.media, stats })
            }
            Err(PublishRefusal::UnknownKey) => Err(Refusal::UnknownToken),
            Err(PublishRefusal::AlreadyPublishing(n)) => Err(Refusal::AlreadyPublishing(n)),
            Err(PublishRefusal::AddressNotAllowed(_)) => Err(Refusal::AddressNotAllowed),
            Err(PublishRefusal::NotRecording(n)) => {
                Err(Refusal::Other(format!("live event {n} has no media pipeline")))
            }
        }
    }

    fn invalid_connection(&self, c: &edge_rtsp::InvalidConnection) {
        use edge_rtsp::Refusal;
        tracing::warn!(peer = %c.peer, token = ?c.token.as_deref().map(edge_rtsp::key_hint), refusal = %c.refusal, "RTSP connection refused");
        let event = c
            .event_id
            .clone()
            .or_else(|| c.token.as_deref().and_then(|k| self.rtmp.live.by_token(k)).map(|s| s.event_id))
            .or_else(|| c.token.as_deref().and_then(|k| self.rtmp.stopped_event_name(k)).map(|(id, _, _)| id));
        let Some(event_id) = event else { return };
        let code = match &c.refusal {
            Refusal::AddressNotAllowed => "MPE_INGEST_IP_NOT_ALLOWED",
            Refusal::NotRunning(_) => "MPE_INGEST_CHANNEL_NOT_RUNNING",
            Refusal::AlreadyPublishing(_) => "MPE_INGEST_STREAM_ALREADY_PUBLISHED",
            Refusal::UnsupportedMedia(_) => "MPE_INGEST_CODEC_NOT_SUPPORTED",
            Refusal::BadSdp(_) | Refusal::Malformed(_) => "MPE_INGEST_RTSP_BAD_REQUEST",
            _ => "MPE_INGEST_CONNECTION_REFUSED",
        };
        self.rtmp.stream_event(
            event_id,
            "StreamEvent/InvalidConnection",
            "Error",
            connection_data(c.peer, code, &c.refusal.to_string()),
        );
    }

    fn publish_ended(&self, e: &edge_rtsp::PublishEnded) {
        use edge_rtsp::EndReason;
        let Some((event_id, grant)) = self.rtmp.grants.lock().expect("poisoned").remove(&e.connection_id) else {
            return;
        };
        let (code, message) = match &e.reason {
            EndReason::Teardown => ("MPE_CLIENT_TERMINATED_SESSION", "The encoder sent TEARDOWN.".to_owned()),
            EndReason::Disconnected(why) => ("MPE_CLIENT_DISCONNECTED", format!("The RTSP connection closed: {why}")),
            EndReason::Idle(d) => {
                ("MPE_INGEST_MEDIA_TIMEOUT", format!("No media for {} s: disconnected.", d.as_secs()))
            }
            EndReason::Shutdown => ("MPE_SERVER_SHUTDOWN", "The appliance is shutting down.".to_owned()),
            EndReason::ConsumerGone => {
                ("MPE_INGEST_STOPPED", "The live event stopped, or a reconnecting encoder took over.".to_owned())
            }
            EndReason::Refused(r) => ("MPE_INGEST_STREAM_REFUSED", r.to_string()),
        };
        tracing::info!(event = %e.event_name, peer = %e.peer, reason = %message, "RTSP encoder disconnected");
        self.rtmp.live.publish_ended(&event_id, grant, code);
        self.rtmp.stream_event(
            event_id,
            "StreamEvent/EndIngest",
            "Information",
            connection_data(e.peer, code, &message),
        );
    }
}

/// One RTSPPull event's side of a pull run: its publisher slot and stream events.
struct PullHost {
    live: LiveRegistry,
    db: Arc<Db>,
    event_id: String,
    event_name: String,
    token: String,
    camera_ip: IpAddr,
}

impl PullHost {
    fn stream_event(&self, event_type: &str, level: &str, data: Value) {
        append_stream_event(&self.db, self.event_id.clone(), event_type, level, data);
    }
}

impl edge_rtsp::pull::PullHost for PullHost {
    fn begin(&self, camera: &str) -> Result<edge_rtsp::pull::PullGrant, edge_rtsp::pull::PullRefused> {
        use edge_rtsp::pull::PullRefused;
        let stats = Arc::new(edge_rtsp::RtspStats::new());
        let probe = Arc::new(RtspProbe(stats.clone()));
        match self.live.authorize_publish(&self.token, self.camera_ip, camera.to_owned(), probe) {
            Ok(t) => {
                tracing::info!(event = %self.event_name, %camera, "RTSP pull: camera connected");
                self.stream_event(
                    "StreamEvent/BeginIngest",
                    "Information",
                    json!({"streamName": camera, "remoteIp": truncated_ip(self.camera_ip), "resultCode": "S_OK", "resultMessage": "RTSP pull from the camera started"}),
                );
                Ok(edge_rtsp::pull::PullGrant { grant: t.grant, media: t.media, stats })
            }
            Err(PublishRefusal::UnknownKey) => Err(PullRefused::Stopped),
            Err(e) => Err(PullRefused::Busy(format!("{e:?}"))),
        }
    }

    fn end(&self, grant: u64, code: &str, message: &str) {
        tracing::info!(event = %self.event_name, reason = %message, "RTSP pull: camera session ended");
        self.live.publish_ended(&self.event_id, grant, code);
        self.stream_event(
            "StreamEvent/EndIngest",
            "Information",
            json!({"remoteIp": truncated_ip(self.camera_ip), "resultCode": code, "resultMessage": message}),
        );
    }

    fn report(&self, event_type: &str, level: &str, code: &str, message: &str) {
        self.stream_event(
            event_type,
            level,
            json!({"remoteIp": truncated_ip(self.camera_ip), "resultCode": code, "resultMessage": message}),
        );
    }
}

/// Starts a camera puller when an RTSPPull event starts and stops it when the event stops
/// (woken by the registry's start/stop notifications), until `shutdown`.
pub async fn run_pullers(live: LiveRegistry, db: Arc<Db>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut changes = live.subscribe();
    // (event id, run start) -> the puller's stop switch.
    let mut running: HashMap<(String, Timestamp), tokio::sync::watch::Sender<bool>> = HashMap::new();
    loop {
        let wanted: Vec<_> = live.sessions().into_iter().filter(|s| s.rtsp_pull.is_some()).collect();
        running.retain(|(id, started), stop| {
            let keep = wanted.iter().any(|s| &s.event_id == id && &s.started == started);
            if !keep {
                let _ = stop.send(true);
            }
            keep
        });
        for s in wanted {
            let key = (s.event_id.clone(), s.started);
            if running.contains_key(&key) {
                continue;
            }
            let Some((url, mode)) = s.rtsp_pull.clone() else { continue };
            let mode = edge_rtsp::pull::PullMode::parse(mode.as_str()).unwrap_or(edge_rtsp::pull::PullMode::TcpUdp);
            let camera_ip = edge_rtsp::pull::split_credentials(&url)
                .ok()
                .and_then(|(u, _)| u.host_str().and_then(|h| h.trim_matches(['[', ']']).parse().ok()))
                .unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let host = Arc::new(PullHost {
                live: live.clone(),
                db: db.clone(),
                event_id: s.event_id.clone(),
                event_name: s.event_name.clone(),
                token: s.access_token.clone(),
                camera_ip,
            });
            let (tx, rx) = tokio::sync::watch::channel(false);
            tracing::info!(event = %s.event_name, ?mode, "RTSP pull: starting");
            tokio::spawn(edge_rtsp::pull::run(edge_rtsp::pull::PullConfig::new(url, mode), host, rx));
            running.insert(key, tx);
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { break },
            _ = shutdown.changed() => break,
        }
    }
    for stop in running.values() {
        let _ = stop.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::truncated_ip;

    #[test]
    fn remote_addresses_are_truncated() {
        assert_eq!(truncated_ip("192.168.1.77".parse().unwrap()), "192.168.1.x");
        assert_eq!(truncated_ip("2001:db8:5::1".parse().unwrap()), "2001:db8:5:x");
    }
}
