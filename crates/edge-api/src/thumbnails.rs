//! Thumbnails for the console's cameras and events (appliance extensions under `/edge/v1`):
//!
//! - `GET /edge/v1/liveEvents/{name}/thumbnail`: the event's newest keyframe as a JPEG (any
//!   protocol, passthrough or transcoded); after the event stops, the last picture it had.
//! - `GET /edge/v1/captureDevices/{id}/thumbnail`: a frame of a local capture device. A device a
//!   Running event captures from is shown through that event (it cannot be opened twice).
//!
//! `?width=` sets the width (default 320, at most 1280). Decoding is the caller's `maker` (the
//! appliance runs GStreamer in a child process); at most [`CONCURRENT`] run at once, and a
//! picture is made again only when there is a newer keyframe (or, for an idle device, after
//! [`DEVICE_TTL`]), so a console polling every few seconds costs little.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use edge_gst::capture::CaptureDeviceId;
use edge_gst::proto::{Msg, WireUnit, encode};

use crate::error::{ApiError, ApiResult};
use crate::{Shared, authenticate};

/// What a thumbnail is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThumbSource {
    /// The transcode worker protocol's `Tracks` + `Unit` of one keyframe.
    Keyframe(Bytes),
    /// A capture device node to grab a frame from.
    Device(String),
}

/// Makes a JPEG of `width` from a source.
pub type ThumbnailMaker =
    Arc<dyn Fn(ThumbSource, u32) -> Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>> + Send + Sync>;

/// Pictures made at once, at most (each is a decoder in a child process; the box has few cores).
pub const CONCURRENT: usize = 2;
/// How long an idle device's picture is reused.
pub const DEVICE_TTL: Duration = Duration::from_secs(5);
const DEFAULT_WIDTH: u32 = 320;
/// Event pictures kept before those of stopped events are forgotten.
const KEPT: usize = 64;

/// A picture made: (what it was made from — a keyframe's dts, or when —, its width, the JPEG).
type Picture<T> = (T, u32, Bytes);

#[derive(Clone)]
struct Thumbs {
    st: Shared,
    maker: ThumbnailMaker,
    limit: Arc<tokio::sync::Semaphore>,
    /// Event id -> (keyframe dts, width, picture); kept after the event stops.
    events: Arc<Mutex<HashMap<String, Picture<i64>>>>,
    /// Device id -> (made at, width, picture).
    devices: Arc<Mutex<HashMap<String, Picture<Instant>>>>,
}

#[derive(serde::Deserialize)]
struct WidthQuery {
    width: Option<u32>,
}

pub fn router(st: Shared, maker: ThumbnailMaker) -> Router {
    let t = Thumbs {
        st,
        maker,
        limit: Arc::new(tokio::sync::Semaphore::new(CONCURRENT)),
        events: Default::default(),
        devices: Default::default(),
    };
    Router::new()
        .route("/edge/v1/liveEvents/{name}/thumbnail", get(event_thumbnail))
        .route("/edge/v1/captureDevices/{id}/thumbnail", get(device_thumbnail))
        .with_state(t)
}

fn width(q: &WidthQuery) -> ApiResult<u32> {
    match q.width {
        None => Ok(DEFAULT_WIDTH),
        Some(w) if edge_gst::THUMBNAIL_WIDTHS.contains(&w) => Ok(w & !1),
        Some(w) => Err(ApiError::invalid_parameter(format!(
            "width {w} is out of range: ask for {} to {} pixels.",
            edge_gst::THUMBNAIL_WIDTHS.start(),
            edge_gst::THUMBNAIL_WIDTHS.end()
        ))),
    }
}

fn jpeg(data: Bytes) -> Response {
    let mut r = (StatusCode::OK, data).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn not_available(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ThumbnailNotAvailable", message)
}

async fn event_thumbnail(
    State(t): State<Thumbs>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<WidthQuery>,
) -> Response {
    let r: ApiResult<Response> = async {
        authenticate(&t.st, &headers).await?;
        let w = width(&q)?;
        let ev = crate::live_events::get(&t.st, &name).await?;
        t.of_event(&ev.id, &ev.name, w).await.map(jpeg)
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn device_thumbnail(
    State(t): State<Thumbs>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<WidthQuery>,
) -> Response {
    let r: ApiResult<Response> = async {
        authenticate(&t.st, &headers).await?;
        let w = width(&q)?;
        let id = CaptureDeviceId::parse(&id).map_err(ApiError::invalid_parameter)?;
        // In use by a Running event: the device is that event's input; show its picture.
        let user = t.st.live.sessions().into_iter().find(|s| s.capture_device.as_deref() == Some(id.as_str()));
        if let Some(s) = user {
            return t.of_event(&s.event_id, &s.event_name, w).await.map(jpeg);
        }
        if let Some((at, cw, pic)) = t.devices.lock().expect("poisoned").get(id.as_str()).cloned()
            && cw == w
            && at.elapsed() < DEVICE_TTL
        {
            return Ok(jpeg(pic));
        }
        let path = id.path();
        if !path.exists() {
            return Err(ApiError::not_found(format!(
                "Capture device '{}' is not connected (GET /edge/v1/captureDevices lists those that are).",
                id.as_str()
            )));
        }
        let _permit = t.limit.acquire().await.map_err(|_| ApiError::internal("thumbnails", "shut down"))?;
        let pic = (t.maker)(ThumbSource::Device(path.to_string_lossy().into_owned()), w).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "CaptureDeviceUnavailable",
                format!(
                    "Capture device '{}' gave no picture: {e}. If another program (or a starting event) uses it, try again in a moment; otherwise check its cable and signal.",
                    id.as_str()
                ),
            )
        })?;
        t.devices.lock().expect("poisoned").insert(id.as_str().to_owned(), (Instant::now(), w, pic.clone()));
        Ok(jpeg(pic))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

impl Thumbs {
    async fn of_event(&self, event_id: &str, event_name: &str, w: u32) -> ApiResult<Bytes> {
        let key = self.st.live.media(event_id).and_then(|m| m.keyframe());
        let cached = self.events.lock().expect("poisoned").get(event_id).cloned();
        let Some(key) = key else {
            // Not running (or no video yet): the last picture, if the event had one.
            return match cached {
                Some((_, _, pic)) => Ok(pic),
                None if self.st.live.is_running(event_id) => Err(not_available(format!(
                    "Live event '{event_name}' has no video yet: the picture appears once its input sends a keyframe."
                ))),
                None => Err(not_available(format!(
                    "Live event '{event_name}' is not running and has no picture yet: start it to see its input."
                ))),
            };
        };
        if let Some((dts, cw, pic)) = &cached
            && *dts == key.unit.dts
            && *cw == w
        {
            return Ok(pic.clone());
        }
        let _permit = self.limit.acquire().await.map_err(|_| ApiError::internal("thumbnails", "shut down"))?;
        // Another request may have made it while this one waited.
        if let Some((dts, cw, pic)) = self.events.lock().expect("poisoned").get(event_id)
            && *dts == key.unit.dts
            && *cw == w
        {
            return Ok(pic.clone());
        }
        let mut input = BytesMut::new();
        encode(&Msg::Tracks(vec![key.track.clone()]), &mut input);
        encode(&Msg::Unit(WireUnit::from_au(&key.unit)), &mut input);
        match (self.maker)(ThumbSource::Keyframe(input.freeze()), w).await {
            Ok(pic) => {
                let mut events = self.events.lock().expect("poisoned");
                if events.len() >= KEPT && !events.contains_key(event_id) {
                    // Bounded: forget pictures of events that are not running (deleted ones too).
                    events.retain(|id, _| self.st.live.is_running(id));
                }
                events.insert(event_id.to_owned(), (key.unit.dts, w, pic.clone()));
                Ok(pic)
            }
            Err(e) => {
                tracing::warn!(event = %event_name, "thumbnail failed: {e}");
                // An older picture beats none.
                cached.map(|(_, _, pic)| pic).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ThumbnailFailed",
                        format!("The picture of live event '{event_name}' could not be decoded ({e}); try again."),
                    )
                })
            }
        }
    }
}
