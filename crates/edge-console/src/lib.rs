//! The technician console: a web UI for the people at the box (venue technicians), served by the
//! appliance itself at `/console/` and talking only to the appliance's own API.
//!
//! Everything the browser needs is embedded in the binary at build time (`build.rs` gzips
//! `web/`), so the console works on a venue LAN with no internet. `index.html` is revalidated
//! on every load (ETag); every other file is served under `/console/<content hash>/` and cached
//! for a year, so an upgraded appliance is picked up on the next load and nothing is fetched
//! twice in between.
//!
//! The console also needs a few facts the ARM API does not carry (disk, CPU, capture devices,
//! the ingest listeners): [`system`] serves them at `GET /edge/v1/system`, behind the API's
//! authentication, and `GET /edge/v1/storage` the bytes each recording takes on disk.

mod system;

use std::io::Read;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use edge_api::Shared;

/// One embedded file.
pub struct Asset {
    /// Path under `web/`.
    pub path: &'static str,
    pub mime: &'static str,
    /// The gzip-compressed bytes.
    pub gz: &'static [u8],
    /// A strong ETag of the uncompressed bytes.
    pub etag: &'static str,
    /// Uncompressed length.
    pub len: usize,
}

mod embedded {
    use super::Asset;
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

pub use embedded::{ASSETS, VERSION_HASH};

/// Where the console lives.
pub const CONSOLE_PATH: &str = "/console/";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
/// Only the appliance's own origin: no CDN, no inline script. hls.js plays from `blob:`
/// MediaSource URLs and may start its transmuxer worker from a `blob:` URL.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The console, the `/` redirect, `GET /edge/v1/system` and `GET /edge/v1/storage`.
pub fn router(state: Shared) -> Router {
    system::mark_start();
    static_router().merge(
        Router::new()
            .route("/edge/v1/system", get(system::handler))
            .route("/edge/v1/storage", get(system::storage_handler))
            .with_state(state),
    )
}

/// The console's static files and the `/` redirect (no state).
pub fn static_router() -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary(CONSOLE_PATH) }))
        .route("/console", get(|| async { Redirect::temporary(CONSOLE_PATH) }))
        .route("/console/", get(|headers: HeaderMap| async move { index(&headers) }))
        .route("/console/{*path}", get(|Path(p): Path<String>, headers: HeaderMap| async move { file(&p, &headers) }))
}

fn index(headers: &HeaderMap) -> Response {
    match asset("index.html") {
        Some(a) => serve(a, headers, REVALIDATE),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn file(path: &str, headers: &HeaderMap) -> Response {
    let (cache, rel) = match path.split_once('/') {
        Some((v, rest)) if v == VERSION_HASH => (IMMUTABLE, rest),
        // A page from before an upgrade may still ask for an old hash: serve the current file,
        // but do not let it be cached under the old name.
        Some((v, rest)) if v.len() == VERSION_HASH.len() && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (REVALIDATE, rest)
        }
        _ => (REVALIDATE, path),
    };
    match asset(rel).filter(|a| a.path != "index.html") {
        Some(a) => serve(a, headers, cache),
        None if !rel.contains('.') => index(headers), // a client-side route such as /console/archive
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Not found\n")
            .into_response(),
    }
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not `gzip;q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let q0 = it.any(|p| {
                p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()).is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q0
        },
    )
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
    })
}

fn serve(a: &'static Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::ETAG, HeaderValue::from_static(a.etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if a.mime.starts_with("text/html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    if not_modified(headers, a.etag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    if accepts_gzip(headers) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (StatusCode::OK, h, a.gz).into_response();
    }
    // Every browser takes gzip; curl without --compressed and some tools do not.
    let mut raw = Vec::with_capacity(a.len);
    match flate2::read::GzDecoder::new(a.gz).read_to_end(&mut raw) {
        Ok(_) => (StatusCode::OK, h, raw).into_response(),
        Err(e) => {
            tracing::error!(path = a.path, error = %e, "embedded console file does not decompress");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut b = Request::get(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        static_router().oneshot(b.body(Body::empty()).unwrap()).await.unwrap()
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), 10 << 20).await.unwrap().to_vec()
    }

    #[test]
    fn embedded_files_are_there_and_decompress() {
        for p in ["index.html", "app.js", "api.js", "views.js", "console.css", "vendor/hls.min.js"] {
            let a = asset(p).unwrap_or_else(|| panic!("{p} is not embedded"));
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(a.gz).read_to_end(&mut raw).unwrap();
            assert_eq!(raw.len(), a.len, "{p}");
        }
        assert!(asset("vendor/hls.js-LICENSE.txt").is_some(), "hls.js ships with its license");
        assert!(asset("vendor/README.md").is_none(), "notes are not served");
        let mut index = String::new();
        flate2::read::GzDecoder::new(asset("index.html").unwrap().gz).read_to_string(&mut index).unwrap();
        assert!(index.contains(&format!("/console/{VERSION_HASH}/app.js")), "index references the hashed app");
        assert!(!index.contains("__VERSION__"));
        assert!(!index.contains("http://") && !index.contains("https://"), "nothing from outside");
    }

    #[tokio::test]
    async fn root_redirects_to_the_console() {
        for p in ["/", "/console"] {
            let r = get(p, &[]).await;
            assert!(r.status().is_redirection(), "{p}: {}", r.status());
            assert_eq!(r.headers()[header::LOCATION], "/console/");
        }
    }

    #[tokio::test]
    async fn index_is_revalidated_and_gzipped() {
        let r = get("/console/", &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(r.headers()[header::CACHE_CONTROL], REVALIDATE);
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'self'"));
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        let r2 = get("/console/", &[("if-none-match", &etag)]).await;
        assert_eq!(r2.status(), StatusCode::NOT_MODIFIED);
        assert!(body(r2).await.is_empty());
    }

    #[tokio::test]
    async fn hashed_files_are_immutable_and_others_are_not() {
        let r = get(&format!("/console/{VERSION_HASH}/app.js"), &[("accept-encoding", "gzip")]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
        let stale = get("/console/000000000000/app.js", &[("accept-encoding", "gzip")]).await;
        assert_eq!(stale.status(), StatusCode::OK);
        assert_eq!(stale.headers()[header::CACHE_CONTROL], REVALIDATE);
        assert_eq!(get("/console/nope.js", &[]).await.status(), StatusCode::NOT_FOUND);
        // Client-side routes get the page.
        let deep = get("/console/archive", &[]).await;
        assert_eq!(deep.status(), StatusCode::OK);
        assert!(deep.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    }

    #[tokio::test]
    async fn clients_without_gzip_get_plain_bytes() {
        for ae in [None, Some("identity"), Some("gzip;q=0, identity")] {
            let h: Vec<(&str, &str)> = ae.map(|v| ("accept-encoding", v)).into_iter().collect();
            let r = get(&format!("/console/{VERSION_HASH}/console.css"), &h).await;
            assert!(r.headers().get(header::CONTENT_ENCODING).is_none(), "{ae:?}");
            let b = body(r).await;
            assert_eq!(b.len(), asset("console.css").unwrap().len);
        }
    }
}
