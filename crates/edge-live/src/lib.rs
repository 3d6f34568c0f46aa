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
}

#[derive(Debug, Clone)]
struct Entry {
    session: LiveSession,
    /// Set by the ingest adapter while an encoder is connected.
    publisher: Option<String>,
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
        m.insert(
            session.event_id.clone(),
            Entry {
                session,
                publisher: None,
            },
        );
    }

    /// Unregisters an event; returns whether it was registered.
    pub fn stop(&self, event_id: &str) -> bool {
        self.inner
            .write()
            .expect("registry poisoned")
            .remove(event_id)
            .is_some()
    }

    pub fn is_running(&self, event_id: &str) -> bool {
        self.inner
            .read()
            .expect("registry poisoned")
            .contains_key(event_id)
    }

    /// The Running event whose stream key this is, if any.
    pub fn by_token(&self, token: &str) -> Option<LiveSession> {
        let m = self.inner.read().expect("registry poisoned");
        m.values()
            .find(|e| e.session.access_token == token)
            .map(|e| e.session.clone())
    }

    /// Records that an encoder connected (`Some(remote)`) or left (`None`).
    pub fn set_publisher(&self, event_id: &str, publisher: Option<String>) {
        if let Some(e) = self
            .inner
            .write()
            .expect("registry poisoned")
            .get_mut(event_id)
        {
            e.publisher = publisher;
        }
    }

    pub fn running_count(&self) -> usize {
        self.inner.read().expect("registry poisoned").len()
    }

    pub fn status(&self, event_id: &str) -> IngestStatus {
        let m = self.inner.read().expect("registry poisoned");
        let now = Timestamp::now();
        match m.get(event_id) {
            None => IngestStatus {
                state: "Stopped",
                health: "",
                descriptions: vec!["The live event is not running.".into(), NO_MANIFEST.into()],
                last_updated: now,
            },
            Some(Entry {
                publisher: None,
                session,
            }) => IngestStatus {
                state: "Running",
                health: "Poor",
                descriptions: vec![
                    format!(
                        "Waiting for the encoder: no {} input has connected since {}.",
                        session.protocol, session.started
                    ),
                    NO_MANIFEST.into(),
                ],
                last_updated: now,
            },
            Some(Entry {
                publisher: Some(p), ..
            }) => IngestStatus {
                state: "Running",
                health: "Good",
                descriptions: vec![format!("Receiving from {p}.")],
                last_updated: now,
            },
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
