//! HLS and DASH delivery at the URLs listPaths returns:
//! `/{streamingLocatorId}/{manifestName}.ism/manifest(format=m3u8-cmaf|mpd-time-cmaf)` and the
//! playlists, init segments and media segments relative to it.
//!
//! The same URLs serve the live presentation while a live output records into the asset (a
//! sliding window over the event's in-memory presentation) and the whole recording as VOD
//! afterwards (rebuilt from the recording index, also after a restart). Manifests are cheap to
//! render and cached per asset and presentation version; segments are immutable files.

pub mod blocking;
pub mod path;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use blocking::{Decision, Directives, Waited};
use edge_cmaf::{DashOptions, Presentation, manifest};
use edge_db::{AssetRow, Db};
use edge_live::{EventMedia, LiveRegistry};
use edge_model::Timestamp;
use path::{Format, PathError, PlaybackPath, Target};
use serde_json::json;
use time::OffsetDateTime;

/// The `UTCTiming` URL of live MPDs (served by [`Delivery::time`]).
pub const TIME_PATH: &str = "/time";

pub struct Delivery {
    db: Arc<Db>,
    live: LiveRegistry,
    assets_dir: PathBuf,
    /// Locator id → what a request needs to know about its locator and asset. Players ask
    /// every second or two per rendition; without this, each request would cost three
    /// SQLite reads on the blocking pool. Locators are immutable, so the only staleness is
    /// a deleted locator or asset, or a live output created or deleted, seen [`RESOLVE_TTL`] late.
    resolved: Mutex<HashMap<String, Arc<Resolved>>>,
    /// Rebuilt VOD presentations, by asset id. A finished recording never changes (an asset
    /// with a recording cannot be recorded into again), but its local copy can go (asset
    /// deleted, or removed by the disk policy once synced), so an entry is trusted for
    /// [`VOD_TTL`]; the cache is bounded by simply clearing it when full.
    vod: Mutex<HashMap<String, (Arc<Presentation>, Instant)>>,
    /// Manifests by asset id and request target: players poll live playlists every second or
    /// two, so each is rendered once per new segment, not once per request.
    /// (The flag: an LL-HLS delta update.)
    rendered: Mutex<HashMap<String, RenderedByTarget>>,
    /// Recently requested segment and init files (immutable once written), so that the many
    /// players of one live stream read each segment from disk once.
    files: Mutex<FileCache>,
}

/// An asset's rendered manifests by request target (and whether an LL-HLS delta update).
type RenderedByTarget = HashMap<(Target, bool), Arc<Rendered>>;

/// How long a resolved locator is trusted before it is read again.
const RESOLVE_TTL: Duration = Duration::from_secs(1);
const RESOLVE_CACHE_ENTRIES: usize = 1024;

/// A locator resolved to its asset, with the live output recording into the asset, if any.
struct Resolved {
    asset: AssetRow,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    /// The live event whose live output records into the asset.
    live_event_id: Option<String>,
    at: Instant,
}

/// A byte-bounded cache of whole files, evicted oldest first. Segments are written once and
/// read by every player of a stream within seconds, so first-in-first-out is as good as LRU.
struct FileCache {
    map: HashMap<PathBuf, Bytes>,
    order: VecDeque<PathBuf>,
    bytes: usize,
}

/// Memory kept for segment files: about 50 s of one 2.5 Mb/s rendition, or the newest
/// segments of many streams.
const FILE_CACHE_BYTES: usize = 16 << 20;
/// Larger files are read from disk for each request instead.
const FILE_CACHE_MAX_ITEM: usize = 4 << 20;

impl FileCache {
    fn get(&self, path: &Path) -> Option<Bytes> {
        self.map.get(path).cloned()
    }

    fn insert(&mut self, path: PathBuf, data: Bytes) {
        if data.len() > FILE_CACHE_MAX_ITEM || self.map.contains_key(&path) {
            return;
        }
        while self.bytes + data.len() > FILE_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(b) = self.map.remove(&old) {
                self.bytes -= b.len();
            }
        }
        self.bytes += data.len();
        self.order.push_back(path.clone());
        self.map.insert(path, data);
    }
}

const VOD_CACHE_ENTRIES: usize = 64;
const VOD_TTL: Duration = Duration::from_secs(10);

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
        Delivery {
            db,
            live,
            assets_dir,
            resolved: Mutex::new(HashMap::new()),
            vod: Mutex::new(HashMap::new()),
            rendered: Mutex::new(HashMap::new()),
            files: Mutex::new(FileCache { map: HashMap::new(), order: VecDeque::new(), bytes: 0 }),
        }
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
        // What a file answer needs from the request (the request itself is not Sync, so it
        // must not be held across an await).
        let ask = FileAsk { head: req.method() == Method::HEAD, range: req.headers().get(header::RANGE).cloned() };
        let query = req.uri().query().map(str::to_owned);
        drop(req);
        let resolved = match self.cached(&pp.locator_id) {
            Some(r) => r,
            None => {
                let this = self.clone();
                let id = pp.locator_id.clone();
                match tokio::task::spawn_blocking(move || this.resolve(&id)).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(refused)) => return refused.response(),
                    Err(e) => {
                        tracing::error!("playback lookup failed: {e}");
                        return error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerError",
                            "Lookup failed; see the log.",
                        );
                    }
                }
            }
        };
        if let Err(refused) = check(&resolved, &pp) {
            return refused.response();
        }
        match &pp.target {
            Target::Init { rendition, period } => {
                self.file(&ask, &resolved.asset, rendition, &edge_record::init_name(*period)).await
            }
            Target::Segment { rendition, seq } => {
                if let Some(r) = self.live_segment(&resolved, rendition, *seq).await {
                    return r;
                }
                self.file(&ask, &resolved.asset, rendition, &edge_record::segment_name(*seq)).await
            }
            Target::Part { rendition, seq, index } => self.part(&ask, &resolved, rendition, *seq, *index).await,
            Target::Manifest { .. } => self.manifest(&pp, resolved, Directives::default()).await,
            Target::MediaPlaylist { rendition } => {
                let directives = match blocking::parse_directives(query.as_deref()) {
                    Ok(d) => d,
                    Err(m) => return error(StatusCode::BAD_REQUEST, "InvalidDeliveryDirective", &m),
                };
                if let Some(r) = self.hold(&resolved, rendition, &directives).await {
                    return r;
                }
                self.manifest(&pp, resolved, directives).await
            }
        }
    }

    fn cached(&self, locator_id: &str) -> Option<Arc<Resolved>> {
        let cache = self.resolved.lock().expect("poisoned");
        cache.get(locator_id).filter(|r| r.at.elapsed() < RESOLVE_TTL).cloned()
    }

    /// Locator → asset (and the live event recording into it), read from the database and
    /// remembered for [`RESOLVE_TTL`].
    fn resolve(&self, locator_id: &str) -> Result<Arc<Resolved>, Refused> {
        let internal = |e: edge_db::DbError| {
            tracing::error!("playback lookup: {e}");
            Refused(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Lookup failed; see the log.".into())
        };
        let locator = self.db.locator_by_id(locator_id).map_err(internal)?.ok_or_else(|| {
            Refused(
                StatusCode::NOT_FOUND,
                "LocatorNotFound",
                "No streaming locator has this id (it may have been deleted).".into(),
            )
        })?;
        let window = |k: &str| locator.properties[k].as_str().and_then(Timestamp::parse);
        let asset = self.db.asset(&locator.asset_name.to_ascii_lowercase()).map_err(internal)?.ok_or_else(|| {
            Refused(StatusCode::NOT_FOUND, "AssetNotFound", "The locator's asset no longer exists.".into())
        })?;
        let live_event_id = self.db.asset_live_info(&asset.id).map_err(internal)?.map(|i| i.live_event_id);
        let r = Arc::new(Resolved {
            asset,
            start: window("startTime"),
            end: window("endTime"),
            live_event_id,
            at: Instant::now(),
        });
        let mut cache = self.resolved.lock().expect("poisoned");
        if cache.len() >= RESOLVE_CACHE_ENTRIES {
            cache.retain(|_, v| v.at.elapsed() < RESOLVE_TTL);
            if cache.len() >= RESOLVE_CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(locator_id.to_owned(), r.clone());
        Ok(r)
    }

    /// The live presentation of an asset, if a Running event records into it: in memory.
    fn live_source(&self, r: &Resolved) -> Option<Arc<EventMedia>> {
        let media = self.live.media(r.live_event_id.as_deref()?)?;
        media.records(&r.asset.id).then_some(media)
    }

    /// The presentation of an asset: live while a Running event records into it, else VOD
    /// (rebuilt from the recording index: a database read, so callers run it off the async
    /// workers).
    fn source(&self, r: &Resolved) -> Result<Option<Source>, edge_db::DbError> {
        if let Some(media) = self.live_source(r) {
            return Ok(Some(Source::Live(media)));
        }
        if let Some(p) = self.cached_vod(&r.asset.id) {
            return Ok(Some(Source::Vod(p)));
        }
        let Some(p) = edge_live::presentation::from_index(&self.db, &r.asset.id, false, Duration::ZERO)? else {
            return Ok(None);
        };
        let p = Arc::new(p);
        // Only a finished recording is cached: one whose live output is gone.
        if self.db.asset_live_info(&r.asset.id)?.is_none() {
            let mut cache = self.vod.lock().expect("poisoned");
            if cache.len() >= VOD_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(r.asset.id.clone(), (p.clone(), Instant::now()));
        }
        Ok(Some(Source::Vod(p)))
    }

    fn cached_vod(&self, asset_id: &str) -> Option<Arc<Presentation>> {
        let cache = self.vod.lock().expect("poisoned");
        cache.get(asset_id).filter(|(_, at)| at.elapsed() < VOD_TTL).map(|(p, _)| p.clone())
    }

    /// A manifest answered from memory: a live presentation (rendered at most once per
    /// version) or a cached VOD one. `None` when the database must be read first.
    fn render_fast(&self, r: &Resolved, target: &Target, skip: bool) -> Option<Result<Arc<Rendered>, Refused>> {
        if let Some(media) = self.live_source(r) {
            return Some(self.render_from(&r.asset, target, &Source::Live(media), skip));
        }
        let vod = self.cached_vod(&r.asset.id)?;
        Some(self.render_from(&r.asset, target, &Source::Vod(vod), skip))
    }

    /// Renders a manifest (or answers why not), reading the database if needed.
    fn render(&self, r: &Resolved, target: &Target, skip: bool) -> Result<Arc<Rendered>, Refused> {
        let source = self.source(r).map_err(|e| {
            tracing::error!("playback: {e}");
            Refused(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Lookup failed; see the log.".into())
        })?;
        match source {
            Some(source) => self.render_from(&r.asset, target, &source, skip),
            None => Err(self.why_no_media(&r.asset)),
        }
    }

    /// Why an asset has no presentation: nothing recorded yet, or the local copy was removed by
    /// the disk policy once its archive was synced (then say where the archive went).
    fn why_no_media(&self, asset: &AssetRow) -> Refused {
        match self.db.sync_job(&asset.id) {
            Ok(Some(job)) if job.evicted_at.is_some() => Refused(
                StatusCode::GONE,
                "RecordingArchived",
                format!(
                    "The local copy of this recording was removed to free disk space after it was uploaded to storage '{}'; play the cloud copy (GET /edge/v1/sync shows its URL).",
                    job.storage
                ),
            ),
            Ok(_) => not_ready(),
            Err(e) => {
                tracing::error!("playback: {e}");
                Refused(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Lookup failed; see the log.".into())
            }
        }
    }

    /// Renders a manifest of a presentation, caching it per presentation version.
    fn render_from(
        &self,
        asset: &AssetRow,
        target: &Target,
        source: &Source,
        skip: bool,
    ) -> Result<Arc<Rendered>, Refused> {
        let key = (target.clone(), skip);
        let (version, live) = match source {
            Source::Live(m) => (m.version(), true),
            Source::Vod(_) => (u64::MAX, false),
        };
        if let Some(r) = self.rendered.lock().expect("poisoned").get(&asset.id).and_then(|m| m.get(&key))
            && r.version == version
            && r.live == live
        {
            return Ok(r.clone());
        }
        let view;
        let p: &Presentation = match source {
            Source::Live(m) => {
                view = m.asset_view(&asset.id).ok_or_else(not_ready)?;
                &view
            }
            Source::Vod(p) => p,
        };
        let (body, content_type) = match target {
            Target::Manifest { format, .. } => {
                // A player starts from these: they wait until every rendition has media.
                if p.live && !p.is_ready() {
                    return Err(not_ready());
                }
                match format {
                    Format::HlsCmaf => (manifest::hls_multivariant(p), "application/vnd.apple.mpegurl"),
                    Format::DashCmaf => {
                        let opts = DashOptions { utc_timing_url: Some(TIME_PATH.into()), ..Default::default() };
                        (manifest::dash_mpd(p, OffsetDateTime::now_utc(), &opts), "application/dash+xml")
                    }
                }
            }
            // A media playlist is useful as soon as its own rendition has a segment: the
            // newest video segment is listed when it is cut, not when the audio catches up.
            Target::MediaPlaylist { rendition } => {
                if p.live && !p.has_segments(rendition) {
                    return Err(not_ready());
                }
                match manifest::hls_media_with(p, rendition, skip) {
                    Some(b) => (b, "application/vnd.apple.mpegurl"),
                    None => return Err(Refused(StatusCode::NOT_FOUND, "NotFound", "No such rendition.".into())),
                }
            }
            _ => unreachable!("files are served elsewhere"),
        };
        let r = Arc::new(Rendered { version, live: p.live, content_type, body: Bytes::from(body) });
        let mut cache = self.rendered.lock().expect("poisoned");
        if cache.len() >= RENDER_CACHE_ENTRIES {
            cache.clear();
        }
        cache.entry(asset.id.clone()).or_default().insert(key, r.clone());
        Ok(r)
    }

    async fn manifest(self: Arc<Self>, pp: &PlaybackPath, resolved: Arc<Resolved>, directives: Directives) -> Response {
        let skip = directives.skip;
        let rendered = match self.render_fast(&resolved, &pp.target, skip) {
            Some(r) => r,
            None => {
                let this = self.clone();
                let target = pp.target.clone();
                match tokio::task::spawn_blocking(move || this.render(&resolved, &target, skip)).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("playback: {e}");
                        return error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerError",
                            "Rendering failed; see the log.",
                        );
                    }
                }
            }
        };
        let rendered = match rendered {
            Ok(r) => r,
            Err(refused) => return refused.response(),
        };
        let cache = if rendered.live { "no-cache, max-age=1" } else { "public, max-age=60" };
        let mut r =
            ([(header::CONTENT_TYPE, rendered.content_type), (header::CACHE_CONTROL, cache)], rendered.body.clone())
                .into_response();
        cors(&mut r);
        r
    }

    /// LL-HLS blocking playlist reload: holds a request with `_HLS_msn` (and `_HLS_part`)
    /// until the playlist holds that segment or part, woken by the event's version watch.
    /// `Some` when it is answered here instead (400 too far ahead, 503 timed out).
    async fn hold(&self, r: &Resolved, rendition: &str, d: &Directives) -> Option<Response> {
        d.msn?;
        let media = self.live_source(r)?;
        let part = media.part_target()?;
        let target = media.target_duration();
        let per_segment = (target.as_secs_f64() / part.as_secs_f64()).ceil().max(1.0) as u64;
        let advance = blocking::advance_parts(part);
        let mut rx = media.subscribe();
        let waited = blocking::wait_until(&mut rx, target * 3, || {
            match blocking::decide(media.position(rendition), d, per_segment, advance) {
                Decision::Ready => Some(true),
                Decision::TooFar => Some(false),
                Decision::Wait => None,
            }
        })
        .await;
        match waited {
            Waited::Done(true) | Waited::Gone => None,
            Waited::Done(false) => Some(error(
                StatusCode::BAD_REQUEST,
                "DeliveryDirectiveTooFarAhead",
                "_HLS_msn/_HLS_part is too far ahead of the live edge.",
            )),
            Waited::TimedOut => Some(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "PlaylistUpdateTimedOut",
                "The requested segment or part did not appear within three target durations (is the encoder sending?).",
            )),
        }
    }

    /// A low-latency part, from memory. A part that does not exist yet but is next at the live
    /// edge (the preload hint) is waited for.
    async fn part(&self, ask: &FileAsk, r: &Resolved, rendition: &str, seq: u64, index: u32) -> Response {
        let not_found = || {
            error(StatusCode::NOT_FOUND, "PartNotFound", "No such part (parts are kept for the newest segments only).")
        };
        let Some(media) = self.live_source(r) else { return not_found() };
        let Some(part) = media.part_target() else { return not_found() };
        let data = match media.part(rendition, seq, index) {
            Some(d) => d,
            None => {
                let pos = media.position(rendition);
                let want = Directives { msn: Some(seq), part: Some(index), skip: false };
                let target = media.target_duration();
                let per_segment = (target.as_secs_f64() / part.as_secs_f64()).ceil().max(1.0) as u64;
                if blocking::decide(pos, &want, per_segment, blocking::advance_parts(part)) != Decision::Wait {
                    return not_found();
                }
                let mut rx = media.subscribe();
                let waited = blocking::wait_until(&mut rx, target * 3, || match media.part(rendition, seq, index) {
                    Some(d) => Some(Some(d)),
                    // Its segment ended with fewer parts: it will never exist.
                    None if media.position(rendition).last_seq.is_some_and(|l| l >= seq) => Some(None),
                    None => None,
                })
                .await;
                match waited {
                    Waited::Done(Some(d)) => d,
                    _ => return not_found(),
                }
            }
        };
        let kind = if rendition.starts_with("audio") { "audio/mp4" } else { "video/mp4" };
        let mut resp = ranged(ask, data, kind);
        cors(&mut resp);
        resp
    }

    /// Low-latency DASH: the segment being written, sent chunk by chunk (chunked transfer
    /// encoding on HTTP/1.1) as its parts are produced. `None`: not such a segment (a complete
    /// one is a file).
    async fn live_segment(&self, r: &Resolved, rendition: &str, seq: i64) -> Option<Response> {
        let media = self.live_source(r)?;
        media.part_target()?;
        let seq = u64::try_from(seq).ok()?;
        let pos = media.position(rendition);
        let next = pos.last_seq.map_or(1, |l| l + 1);
        if seq != next {
            return None;
        }
        let timeout = media.target_duration() * 3;
        let mut rx = media.subscribe();
        // Answer once the segment has its first chunk (or turns out complete already).
        let waited = blocking::wait_until(&mut rx, timeout, || {
            let (parts, complete) = media.segment_parts(rendition, seq);
            (!parts.is_empty() || complete).then_some(())
        })
        .await;
        if waited != Waited::Done(()) {
            return Some(error(StatusCode::NOT_FOUND, "SegmentNotFound", "The segment did not start in time."));
        }
        let (_, complete) = media.segment_parts(rendition, seq);
        if complete {
            return None;
        }
        let kind = if rendition.starts_with("audio") { "audio/mp4" } else { "video/mp4" };
        let rendition = rendition.to_owned();
        let state = (media, rx, 0usize, rendition, false);
        let stream = futures::stream::unfold(state, move |(media, mut rx, sent, rendition, done)| async move {
            if done {
                return None;
            }
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                rx.borrow_and_update();
                let (parts, complete) = media.segment_parts(&rendition, seq);
                if parts.len() > sent {
                    let mut chunk = Vec::with_capacity(parts[sent..].iter().map(Bytes::len).sum());
                    for p in &parts[sent..] {
                        chunk.extend_from_slice(p);
                    }
                    let n = parts.len();
                    return Some((
                        Ok::<Bytes, std::io::Error>(Bytes::from(chunk)),
                        (media, rx, n, rendition, complete),
                    ));
                }
                if complete {
                    return None;
                }
                match tokio::time::timeout_at(deadline, rx.changed()).await {
                    Ok(Ok(())) => {}
                    _ => return None,
                }
            }
        });
        let mut resp = Response::new(axum::body::Body::from_stream(stream));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        cors(&mut resp);
        Some(resp)
    }

    /// A segment or init file. Files are immutable once their name exists (written to a
    /// temporary name, fsynced, renamed: docs/crash-safety.md), so a cached copy is always
    /// the file.
    async fn file(&self, ask: &FileAsk, asset: &AssetRow, rendition: &str, name: &str) -> Response {
        let path = self.assets_dir.join(&asset.id).join(rendition).join(name);
        let cached = self.files.lock().expect("poisoned").get(&path);
        let data = match cached {
            Some(d) => d,
            None => {
                let p = path.clone();
                match tokio::task::spawn_blocking(move || std::fs::read(p)).await {
                    Ok(Ok(d)) => {
                        let d = Bytes::from(d);
                        self.files.lock().expect("poisoned").insert(path, d.clone());
                        d
                    }
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        return error(
                            StatusCode::NOT_FOUND,
                            "SegmentNotFound",
                            "No such segment (outside the recording, or not written yet).",
                        );
                    }
                    Ok(Err(e)) => {
                        tracing::error!(path = %path.display(), "cannot read segment: {e}");
                        return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Read failed.");
                    }
                    Err(e) => {
                        tracing::error!("playback: {e}");
                        return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Read failed.");
                    }
                }
            }
        };
        let kind = if rendition.starts_with("audio") { "audio/mp4" } else { "video/mp4" };
        let mut r = ranged(ask, data, kind);
        cors(&mut r);
        r
    }
}

fn not_ready() -> Refused {
    Refused(
        StatusCode::NOT_FOUND,
        "ManifestNotAvailable",
        "Live manifest is not available: no media has been packaged yet. Check the encoder (getStatus).".into(),
    )
}

/// The per-request checks of a resolved locator: its time window and manifest name.
fn check(r: &Resolved, pp: &PlaybackPath) -> Result<(), Refused> {
    let now = Timestamp::now();
    if r.start.is_some_and(|s| now < s) || r.end.is_some_and(|e| now > e) {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            "LocatorNotActive",
            "The streaming locator is outside its startTime/endTime window.".into(),
        ));
    }
    match &r.asset.manifest_name {
        Some(m) if m.eq_ignore_ascii_case(&pp.manifest) => Ok(()),
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

/// The parts of a request that shape a file answer.
struct FileAsk {
    head: bool,
    range: Option<HeaderValue>,
}

/// An immutable body with HEAD and single byte-range support (RFC 9110 §14); a multi-range
/// request gets the whole body (allowed, and players never ask for several ranges).
fn ranged(ask: &FileAsk, data: Bytes, content_type: &'static str) -> Response {
    let len = data.len() as u64;
    // A Range that does not parse (another unit, bad syntax) is ignored, as RFC 9110 §14.2
    // asks; one that parses but lies outside the body is 416.
    let range = ask
        .range
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| http_range_header::parse_range_header(v).ok())
        .map(|r| r.validate(len).map_err(|_| ()));
    let (status, body, content_range) = match range {
        None => (StatusCode::OK, data, None),
        Some(Err(())) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let (a, b) = (*ranges[0].start(), *ranges[0].end());
            (StatusCode::PARTIAL_CONTENT, data.slice(a as usize..=b as usize), Some(format!("bytes {a}-{b}/{len}")))
        }
        Some(Ok(_)) => (StatusCode::OK, data, None),
    };
    let body_len = body.len();
    let mut r = if ask.head {
        let mut r = status.into_response();
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
        r
    } else {
        (status, body).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Segments never change once written.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    if let Some(cr) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert(header::CONTENT_RANGE, cr);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, range: Option<&str>) -> FileAsk {
        FileAsk { head: method == Method::HEAD, range: range.map(|r| HeaderValue::from_str(r).unwrap()) }
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap().to_vec()
    }

    fn data() -> Bytes {
        Bytes::from((0..=255u8).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn whole_body_with_immutable_caching() {
        let r = ranged(&req(Method::GET, None), data(), "video/mp4");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::ACCEPT_RANGES], "bytes");
        assert!(r.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        assert_eq!(body(r).await, data().to_vec());
    }

    #[tokio::test]
    async fn single_ranges_of_every_form() {
        for (h, want, cr) in [
            ("bytes=10-19", 10..20, "bytes 10-19/256"),
            ("bytes=250-", 250..256, "bytes 250-255/256"),
            ("bytes=-6", 250..256, "bytes 250-255/256"),
            ("bytes=0-1000", 0..256, "bytes 0-255/256"),
        ] {
            let r = ranged(&req(Method::GET, Some(h)), data(), "video/mp4");
            assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{h}");
            assert_eq!(r.headers()[header::CONTENT_RANGE], cr, "{h}");
            assert_eq!(body(r).await, data()[want].to_vec(), "{h}");
        }
    }

    #[tokio::test]
    async fn unsatisfiable_ranges_are_416() {
        for h in ["bytes=300-400", "bytes=256-", "bytes=20-10"] {
            let r = ranged(&req(Method::GET, Some(h)), data(), "video/mp4");
            assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{h}");
            assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */256", "{h}");
        }
    }

    #[tokio::test]
    async fn ranges_that_do_not_parse_are_ignored() {
        for h in ["pages=1-2", "bytes=abc"] {
            let r = ranged(&req(Method::GET, Some(h)), data(), "video/mp4");
            assert_eq!(r.status(), StatusCode::OK, "{h}");
            assert_eq!(body(r).await.len(), 256, "{h}");
        }
    }

    #[tokio::test]
    async fn multiple_ranges_get_the_whole_body() {
        let r = ranged(&req(Method::GET, Some("bytes=0-1,5-6")), data(), "video/mp4");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body(r).await.len(), 256);
    }

    #[tokio::test]
    async fn head_has_the_length_and_no_body() {
        let r = ranged(&req(Method::HEAD, Some("bytes=0-9")), data(), "audio/mp4");
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "10");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "audio/mp4");
        assert!(body(r).await.is_empty());
    }

    #[test]
    fn file_cache_is_bounded_and_evicts_oldest_first() {
        let mut c = FileCache { map: HashMap::new(), order: VecDeque::new(), bytes: 0 };
        let seg = Bytes::from(vec![0u8; 1 << 20]);
        for i in 0..40 {
            c.insert(PathBuf::from(format!("s{i}")), seg.clone());
        }
        assert!(c.bytes <= FILE_CACHE_BYTES);
        assert_eq!(c.bytes, c.map.values().map(Bytes::len).sum::<usize>());
        assert!(c.get(Path::new("s0")).is_none(), "the oldest went first");
        assert!(c.get(Path::new("s39")).is_some());
        c.insert(PathBuf::from("huge"), Bytes::from(vec![0u8; FILE_CACHE_MAX_ITEM + 1]));
        assert!(c.get(Path::new("huge")).is_none(), "too large to keep");
    }
}
