//! The live-session registry: the in-memory view of which live events are Running and so
//! accept an encoder, found by their access token (the stream key) at ingest, and what their
//! ingest looks like now (for getStatus and the console).
//!
//! The database is the source of truth for resources; this registry is rebuilt from it at
//! start-up (every Running event is registered again, so encoders can reconnect after a power
//! cut). Ingest adapters (RTMP, SRT, RTSP) only talk to this registry, never to the API.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use edge_model::{StreamingProtocol, Timestamp};

/// What ingest needs to know about a Running event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub event_id: String,
    pub event_name: String,
    pub access_token: String,
    pub protocol: StreamingProtocol,
    pub started: Timestamp,
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
}

#[derive(Debug, Clone)]
struct Entry {
    session: LiveSession,
    /// Set by the ingest adapter while an encoder is connected.
    publisher: Option<String>,
    ingestion: Ingestion,
}

#[derive(Debug, Default, Clone)]
pub struct LiveRegistry {
    inner: Arc<RwLock<HashMap<String, Entry>>>,
}

/// The RMS message that tells players (and Ravnur's sample code) there is nothing to play yet.
pub const NO_MANIFEST: &str = "Live manifest is not available.";

impl LiveRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a Running event: from now on its stream key is accepted at ingest.
    pub fn start(&self, session: LiveSession) {
        let mut m = self.inner.write().expect("registry poisoned");
        m.insert(session.event_id.clone(), Entry { session, publisher: None, ingestion: Ingestion::default() });
    }

    /// Unregisters an event; returns whether it was registered.
    pub fn stop(&self, event_id: &str) -> bool {
        self.inner.write().expect("registry poisoned").remove(event_id).is_some()
    }

    pub fn is_running(&self, event_id: &str) -> bool {
        self.inner.read().expect("registry poisoned").contains_key(event_id)
    }

    /// The Running event whose stream key this is, if any.
    pub fn by_token(&self, token: &str) -> Option<LiveSession> {
        let m = self.inner.read().expect("registry poisoned");
        m.values().find(|e| e.session.access_token == token).map(|e| e.session.clone())
    }

    /// Records that an encoder connected (`Some(name)`) or left (`None`).
    pub fn set_publisher(&self, event_id: &str, publisher: Option<String>) {
        let mut m = self.inner.write().expect("registry poisoned");
        let Some(e) = m.get_mut(event_id) else { return };
        let now = Timestamp::now();
        match &publisher {
            Some(p) => {
                if let Some(last) = e.ingestion.interruptions.last_mut().filter(|i| i.end.is_none()) {
                    last.end = Some(now);
                }
                if e.ingestion.begin.is_none() {
                    e.ingestion.begin = Some(now);
                }
                e.ingestion.stream_name = p.clone();
                e.ingestion.end = None;
                e.ingestion.end_reason.clear();
            }
            None if e.publisher.is_some() => {
                let reason = "MPE_CLIENT_TERMINATED_SESSION".to_owned();
                e.ingestion.end = Some(now);
                e.ingestion.end_reason = reason.clone();
                e.ingestion.interruptions.push(Interruption { begin: now, end: None, reason });
            }
            None => {}
        }
        e.publisher = publisher;
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
            };
        };
        let (health, descriptions) = match &e.publisher {
            None => (
                "Poor",
                vec![
                    format!(
                        "Waiting for the encoder: no {} input has connected since {}.",
                        e.session.protocol, e.session.started
                    ),
                    NO_MANIFEST.into(),
                ],
            ),
            Some(p) => ("Good", vec![format!("Receiving from {p}.")]),
        };
        IngestStatus {
            state: "Running",
            health,
            descriptions,
            last_updated: now,
            ingestion: e.ingestion.clone(),
            tracks: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, token: &str) -> LiveSession {
        LiveSession {
            event_id: id.into(),
            event_name: id.into(),
            access_token: token.into(),
            protocol: StreamingProtocol::Rtmp,
            started: Timestamp::now(),
        }
    }

    #[test]
    fn tokens_resolve_only_while_running() {
        let r = LiveRegistry::new();
        assert!(r.by_token("k1").is_none());
        r.start(session("e1", "k1"));
        assert_eq!(r.by_token("k1").unwrap().event_id, "e1");
        assert!(r.by_token("k2").is_none());
        assert!(r.stop("e1"));
        assert!(!r.stop("e1"));
        assert!(r.by_token("k1").is_none());
    }

    #[test]
    fn status_follows_the_publisher() {
        let r = LiveRegistry::new();
        assert_eq!(r.status("e1").state, "Stopped");
        r.start(session("e1", "k1"));
        let s = r.status("e1");
        assert_eq!((s.state, s.health), ("Running", "Poor"));
        assert!(s.descriptions.iter().any(|d| d == NO_MANIFEST));
        r.set_publisher("e1", Some("10.0.0.5".into()));
        let s = r.status("e1");
        assert_eq!((s.state, s.health), ("Running", "Good"));
        assert!(!s.descriptions.iter().any(|d| d == NO_MANIFEST));
    }
}
