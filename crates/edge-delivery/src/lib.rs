//! HLS and DASH delivery at the URLs listPaths returns:
//! `/{streamingLocatorId}/{manifestName}.ism/manifest(format=m3u8-cmaf|mpd-time-cmaf)` and the
//! playlists, init segments and media segments relative to it.
//!
//! The same URLs serve the live presentation while a live output records into the asset (a
//! sliding window over the event's in-memory presentation) and the whole recording as VOD
//! afterwards (rebuilt from the recording index, also after a restart). Manifests are cheap to
//! render and cached per asset and presentation version; segments are immutable files.

pub mod path;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edge_cmaf::{DashOptions, Presentation, manifest};
use edge_db::{AssetRow, Db, LocatorRow};
use edge_live::{EventMedia, LiveRegistry};
use edge_model::Timestamp;
use path::{Format, PathError, PlaybackPath, Target};
use serde_json::json;
use time::OffsetDateTime;
use tower::ServiceExt;

/// The `UTCTiming` URL of live MPDs (served by [`Delivery::time`]).
pub const TIME_PATH: &str = "/time";

pub struct Delivery {
    db: Arc<Db>,
    live: LiveRegistry,
    assets_dir: PathBuf,
    /// Rebuilt VOD presentations, by asset id. A finished recording never changes (an asset
    /// with a recording cannot be recorded into again), so entries stay valid until the asset
    /// goes; the cache is bounded by simply clearing it when full.
    vod: Mutex<HashMap<String, Arc<Presentation>>>,
    /// Manifests by (asset id, request target): players poll live playlists every second or
    /// two, so each is rendered once per new segment, not once per request.
    rendered: Mutex<HashMap<(String, String), Arc<Rendered>>>,
}

const VOD_CACHE_ENTRIES: usize = 64;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response();
    cors(&mut r);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// A refusal, turned into a response at the edge (small, so results stay cheap to move).
struct Refused(StatusCode, &'static str, String);

impl Refused {
    fn response(&self) -> Response {
        error(self.0, self.1, &self.2)
    }
}

fn cors(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, Accept-Ranges, Date"),
    );
}

/// Where the presentation of a request comes from.
enum Source {
    /// A Running event records into the asset: its live view, at a version.
    Live(Arc<EventMedia>),
    Vod(Arc<Presentation>),
}

/// A rendered manifest: the presentation version it was rendered from, and its bytes.
struct Rendered {
    version: u64,
    live: bool,
    content_type: &'static str,
    body: Bytes,
}

/// Rendered manifests kept (live ones are replaced at every new segment).
const RENDER_CACHE_ENTRIES: usize = 256;

impl Delivery {
    pub fn new(db: Arc<Db>, live: LiveRegistry, assets_dir: PathBuf) -> Self {
        Delivery { db, live, assets_dir, vod: Mutex::new(HashMap::new()), rendered: Mutex::new(HashMap::new()) }
    }

    /// `GET /time`: the appliance's clock for DASH players (`UTCTiming`, http-iso).
    pub fn time(&self) -> Response {
        let mut r = (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
            Timestamp::now().to_string(),
        )
            .into_response();
        cors(&mut r);
        r
    }

    pub async fn handle(self: Arc<Self>, req: Request) -> Response {
        match *req.method() {
            Method::GET | Method::HEAD => {}
            Method::OPTIONS => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                cors(&mut r);
                let h = r.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Range, Content-Type"));
                h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
                return r;
            }
            _ => {
                return error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "Playback URLs answer GET and HEAD.");
            }
        }
        let pp = match path::parse(req.uri().path()) {
            Ok(p) => p,
            Err(PathError::Unsupported(m)) => return error(StatusCode::BAD_REQUEST, "UnsupportedFormat", &m),
            Err(PathError::NotFound | PathError::NotPlayback) => {
                return error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "No such playback URL; use the paths listPaths returns.",
                );
            }
        };
        let this = self.clone();
        let resolved = tokio::task::spawn_blocking(move || this.resolve(&pp).map(|r| (pp, r))).await;
        let (pp, (_locator, asset)) = match resolved {
            Ok(Ok(x)) => x,
            Ok(Err(refused)) => return refused.response(),
            Err(e) => {
                tracing::error!("playback lookup failed: {e}");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Lookup failed; see the log.");
            }
        };
        match &pp.target {
            Target::Init { rendition, period } => {
                self.file(req, &asset, rendition, &edge_record::init_name(*period)).await
            }
            Target::Segment { rendition, seq } => {
                self.file(req, &asset, rendition, &edge_record::segment_name(*seq)).await
            }
            Target::Manifest { .. } | Target::MediaPlaylist { .. } => self.manifest(&pp, &asset).await,
        }
    }

    /// Locator → asset, with the checks a player's request must pass.
    fn resolve(&self, pp: &PlaybackPath) -> Result<(LocatorRow, AssetRow), Refused> {
        let internal = |e: edge_db::DbError| {
            tracing::error!("playback lookup: {e}");
            Refused(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Lookup failed; see the log.".into())
        };
        let locator = self.db.locator_by_id(&pp.locator_id).map_err(internal)?.ok_or_else(|| {
            Refused(
                StatusCode::NOT_FOUND,
                "LocatorNotFound",
                "No streaming locator has this id (it may have been deleted).".into(),
            )
        })?;
        let now = Timestamp::now();
        let window = |k: &str| locator.properties[k].as_str().and_then(Timestamp::parse);
        if window("startTime").is_some_and(|s| now < s) || window("endTime").is_some_and(|e| now > e) {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                "LocatorNotActive",
                "The streaming locator is outside its startTime/endTime window.".into(),
            ));
        }
        let asset = self.db.asset(&locator.asset_name.to_ascii_lowercase()).map_err(internal)?.ok_or_else(|| {
            Refused(StatusCode::NOT_FOUND, "AssetNotFound", "The locator's asset no longer exists.".into())
        })?;
        match &asset.manifest_name {
            Some(m) if m.eq_ignore_ascii_case(&pp.manifest) => Ok((locator, asset)),
            Some(m) => Err(Refused(
                StatusCode::NOT_FOUND,
                "ManifestNotFound",
                format!("This asset's manifest is '{m}.ism', not '{}.ism'.", pp.manifest),
            )),
            None => Err(Refused(
                StatusCode::NOT_FOUND,
                "ManifestNotFound",
                "This asset has never been recorded into: create a live output for it.".into(),
            )),
        }
    }

    /// The presentation of an asset: live while a Running event records into it, else VOD.
    fn source(&self, asset: &AssetRow) -> Result<Option<Source>, edge_db::DbError> {
        if let Some(info) = self.db.asset_live_info(&asset.id)?
            && info.live_event_running
            && let Some(media) = self.live.media(&info.live_event_id)
            && media.records(&asset.id)
        {
            return Ok(Some(Source::Live(media)));
        }
        if let Some(p) = self.vod.lock().expect("poisoned").get(&asset.id) {
            return Ok(Some(Source::Vod(p.clone())));
        }
        let Some(p) = edge_live::presentation::from_index(&self.db, &asset.id, false, Duration::ZERO)? else {
            return Ok(None);
        };
        let p = Arc::new(p);
        // Only a finished recording is cached: one whose live output is gone.
        if self.db.asset_live_info(&asset.id)?.is_none() {
            let mut cache = self.vod.lock().expect("poisoned");
            if cache.len() >= VOD_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(asset.id.clone(), p.clone());
        }
        Ok(Some(Source::Vod(p)))
    }

    /// Renders a manifest (or answers why not), caching it per presentation version.
    fn render(&self, asset: &AssetRow, target: &Target) -> Result<Arc<Rendered>, Refused> {
        let source = self.source(asset).map_err(|e| {
            tracing::error!("playback: {e}");
            Refused(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Lookup failed; see the log.".into())
        })?;
        let not_ready = || {
            Refused(
                StatusCode::NOT_FOUND,
                "ManifestNotAvailable",
                "Live manifest is not available: no media has been packaged yet. Check the encoder (getStatus).".into(),
            )
        };
        let source = source.ok_or_else(not_ready)?;
        let (version, live) = match &source {
            Source::Live(m) => (m.version(), true),
            Source::Vod(_) => (u64::MAX, false),
        };
        let key = (asset.id.clone(), format!("{target:?}"));
        if let Some(r) = self.rendered.lock().expect("poisoned").get(&key)
            && r.version == version
            && r.live == live
        {
            return Ok(r.clone());
        }
        let view;
        let p: &Presentation = match &source {
            Source::Live(m) => {
                view = m.asset_view(&asset.id).ok_or_else(not_ready)?;
                &view
            }
            Source::Vod(p) => p,
        };
        if p.live && !p.is_ready() {
            return Err(not_ready());
        }
        let (body, content_type) = match target {
            Target::Manifest { format: Format::HlsCmaf, .. } => {
                (manifest::hls_multivariant(p), "application/vnd.apple.mpegurl")
            }
            Target::Manifest { format: Format::DashCmaf, .. } => {
                let opts = DashOptions { utc_timing_url: Some(TIME_PATH.into()), ..Default::default() };
                (manifest::dash_mpd(p, OffsetDateTime::now_utc(), &opts), "application/dash+xml")
            }
            Target::MediaPlaylist { rendition } => match manifest::hls_media(p, rendition) {
                Some(b) => (b, "application/vnd.apple.mpegurl"),
                None => return Err(Refused(StatusCode::NOT_FOUND, "NotFound", "No such rendition.".into())),
            },
            _ => unreachable!("files are served elsewhere"),
        };
        let r = Arc::new(Rendered { version, live: p.live, content_type, body: Bytes::from(body) });
        let mut cache = self.rendered.lock().expect("poisoned");
        if cache.len() >= RENDER_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, r.clone());
        Ok(r)
    }

    async fn manifest(self: Arc<Self>, pp: &PlaybackPath, asset: &AssetRow) -> Response {
        let this = self.clone();
        let (a2, target) = (asset.clone(), pp.target.clone());
        let rendered = match tokio::task::spawn_blocking(move || this.render(&a2, &target)).await {
            Ok(Ok(r)) => r,
            Ok(Err(refused)) => return refused.response(),
            Err(e) => {
                tracing::error!("playback: {e}");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Rendering failed; see the log.",
                );
            }
        };
        let cache = if rendered.live { "no-cache, max-age=1" } else { "public, max-age=60" };
        let mut r =
            ([(header::CONTENT_TYPE, rendered.content_type), (header::CACHE_CONTROL, cache)], rendered.body.clone())
                .into_response();
        cors(&mut r);
        r
    }

    async fn file(&self, req: Request, asset: &AssetRow, rendition: &str, name: &str) -> Response {
        let path = self.assets_dir.join(&asset.id).join(rendition).join(name);
        let (parts, _) = req.into_parts();
        let req = Request::from_parts(parts, Body::empty());
        let mut r = match tower_http::services::ServeFile::new(&path).oneshot(req).await {
            Ok(r) => r.map(Body::new),
            Err(e) => match e {},
        };
        if r.status() == StatusCode::NOT_FOUND {
            return error(
                StatusCode::NOT_FOUND,
                "SegmentNotFound",
                "No such segment (outside the recording, or not written yet).",
            );
        }
        let kind = if rendition.starts_with("audio") { "audio/mp4" } else { "video/mp4" };
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        // Segments never change once written.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
        cors(&mut r);
        r
    }
}
