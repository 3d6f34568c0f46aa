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
        let db = self.db.clone();
        let row =
            StreamEventRow { time: Timestamp::now(), event_type: event_type.to_owned(), level: level.to_owned(), data };
        tokio::task::spawn_blocking(move || {
            if let Err(e) = db.stream_event_append(&event_id, &row, STREAM_EVENTS_KEPT) {
                tracing::warn!("cannot record a stream event: {e}");
            }
        });
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

#[cfg(test)]
mod tests {
    use super::truncated_ip;

    #[test]
    fn remote_addresses_are_truncated() {
        assert_eq!(truncated_ip("192.168.1.77".parse().unwrap()), "192.168.1.x");
        assert_eq!(truncated_ip("2001:db8:5::1".parse().unwrap()), "2001:db8:5:x");
    }
}
