//! `GET /edge/v1/captureDevices`: the local capture devices (V4L2) a live event can take as its
//! input, by stable id, with their formats, sizes and frame rates. Not an ARM resource: it lives
//! under the appliance's own `/edge/v1` prefix, behind the same authentication as the API. The
//! listing itself is the caller's (the appliance asks GStreamer in a child process, so a driver
//! that hangs or crashes while probed never takes the API with it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::{Shared, authenticate};

/// Lists the devices: a JSON array of devices, or why it could not.
pub type CaptureLister = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send>> + Send + Sync>;

/// The route, with its state applied (merged into the appliance's router).
pub fn router(state: Shared, lister: CaptureLister) -> Router {
    Router::new()
        .route(
            "/edge/v1/captureDevices",
            get(move |st: State<Shared>, headers: HeaderMap| list(st, headers, lister.clone())),
        )
        .with_state(state)
}

async fn list(State(st): State<Shared>, headers: HeaderMap, lister: CaptureLister) -> Response {
    if let Err(e) = authenticate(&st, &headers).await {
        return e.into_response();
    }
    match lister().await {
        Ok(devices) => axum::Json(json!({"value": devices})).into_response(),
        Err(e) => ApiError::internal("listing the capture devices", e).into_response(),
    }
}

/// `GET /edge/v1/encoders`: the video encoder transcoding uses on this appliance (hardware or
/// x264) and why, from the same probe the transcode workers run; `probe` runs it in a child process.
pub fn encoders_router(state: Shared, probe: CaptureLister) -> Router {
    Router::new()
        .route(
            "/edge/v1/encoders",
            get(move |State(st): State<Shared>, headers: HeaderMap| {
                let probe = probe.clone();
                async move {
                    if let Err(e) = authenticate(&st, &headers).await {
                        return e.into_response();
                    }
                    match probe().await {
                        Ok(doc) => axum::Json(doc).into_response(),
                        Err(e) => ApiError::internal("probing the video encoders", e).into_response(),
                    }
                }
            }),
        )
        .with_state(state)
}
