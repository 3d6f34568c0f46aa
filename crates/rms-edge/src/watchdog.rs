//! The systemd watchdog. `WATCHDOG=1` is sent at half the configured period, and only while
//! the critical loops report progress: the async runtime (this task runs on it), the database
//! writer (a ping takes its lock, so a stuck writer stops the pings), the API (a request
//! served through the full router stack) and every live pipeline (packaging and recording:
//! media waiting but no progress for 10 s). When one of them hangs, systemd kills and restarts
//! the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use edge_api::Shared;
use edge_db::Db;

#[derive(Clone)]
pub struct Watchdog {
    db: Arc<Db>,
    /// Test hook: pretend the critical loop hangs.
    stalled: Arc<AtomicBool>,
}

impl Watchdog {
    pub fn new(db: Arc<Db>) -> Self {
        Watchdog { db, stalled: Arc::new(AtomicBool::new(false)) }
    }

    /// `POST /_test/stall`, mounted only with RMS_EDGE_TEST_HOOKS=1 (the qemu watchdog test).
    pub fn test_routes(&self) -> Router {
        let stalled = self.stalled.clone();
        Router::new().route(
            "/_test/stall",
            post(move || {
                let stalled = stalled.clone();
                async move {
                    tracing::warn!("test hook: the critical loop stops reporting progress");
                    stalled.store(true, Ordering::SeqCst);
                    "stalled\n"
                }
            }),
        )
    }

    async fn healthy(&self, st: &Shared) -> bool {
        if self.stalled.load(Ordering::SeqCst) {
            return false;
        }
        let db = self.db.clone();
        let db_ok =
            tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || db.ping().is_ok()))
                .await
                .map(|r| r.unwrap_or(false))
                .unwrap_or(false);
        if !db_ok {
            tracing::error!("watchdog: the database writer did not answer within 5 s");
            return false;
        }
        let stuck = st.live.stuck_pipelines(Duration::from_secs(10));
        if !stuck.is_empty() {
            tracing::error!(events = ?stuck, "watchdog: live pipelines made no progress for 10 s with media waiting");
            return false;
        }
        let router = edge_api::router(st.clone());
        let probe = axum::http::Request::get("/healthz").body(axum::body::Body::empty()).expect("static request");
        let api_ok = tokio::time::timeout(Duration::from_secs(5), tower::ServiceExt::oneshot(router, probe))
            .await
            .map(|r| r.map(|resp| resp.status().is_success()).unwrap_or(false))
            .unwrap_or(false);
        if !api_ok {
            tracing::error!("watchdog: the API did not answer its health check within 5 s");
        }
        api_ok
    }

    pub async fn run(self, st: Shared) {
        let Some(period) = sd_notify::watchdog_enabled() else {
            return;
        };
        let tick = period / 2;
        tracing::info!(?period, "systemd watchdog enabled");
        loop {
            tokio::time::sleep(tick).await;
            if self.healthy(&st).await {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }
    }
}
