//! The HTTP layer under `object_store`: every request to a storage target passes here, so this
//! is where uploads are rate-capped (retries of the client included), counted, and checked.
//!
//! Checksums: for each PUT with a body the MD5 of the body is computed. It is sent as
//! `Content-MD5` where the request's signature allows adding a header after signing (S3:
//! SigV4 lists its signed headers; Azure with a SAS token: nothing is signed), and the service
//! then refuses a corrupted body. Azure with an account key signs `Content-MD5` as part of the
//! request, so there the header is not added. In every case the MD5 the service reports back
//! (`Content-MD5` from Azure, a plain `ETag` from S3) is compared with ours: a mismatch fails
//! the request (and the outbox retries it).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderValue, Method};
use md5::{Digest, Md5};
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpService,
    ReqwestConnector,
};

use crate::ratelimit::Limiter;

/// Counters for the status endpoint and the tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Request body bytes sent to targets (every attempt, retries included).
    pub bytes_sent: AtomicU64,
    pub requests: AtomicU64,
    /// Bodies whose MD5 the service reported back and that matched.
    pub md5_verified: AtomicU64,
    pub md5_mismatches: AtomicU64,
    /// Parts skipped because an earlier run had committed them.
    pub parts_resumed: AtomicU64,
    pub objects_uploaded: AtomicU64,
}

/// What all targets share: one cap for the whole uplink, one set of counters.
#[derive(Debug)]
pub struct Shared {
    pub limiter: tokio::sync::Mutex<Limiter>,
    pub epoch: Instant,
    pub stats: Stats,
}

impl Shared {
    pub fn new(limiter: Limiter) -> Arc<Shared> {
        Arc::new(Shared { limiter: tokio::sync::Mutex::new(limiter), epoch: Instant::now(), stats: Stats::default() })
    }

    /// Waits until `n` more bytes may be sent under the cap.
    pub async fn pace(&self, n: u64) {
        if n == 0 {
            return;
        }
        let now_utc = time::OffsetDateTime::now_utc();
        let minute = u32::from(now_utc.hour()) * 60 + u32::from(now_utc.minute());
        let wait = self.limiter.lock().await.take(n, self.epoch.elapsed(), minute);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// How the MD5 of a body is handled for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Md5Mode {
    /// Send `Content-MD5` (S3; Azure with SAS) and verify the reply.
    SendAndVerify,
    /// Only verify the service's reply (Azure with an account key).
    VerifyOnly,
}

/// The MD5 of a body the caller computed already (while reading the file), passed down as a
/// request extension so it is not computed twice.
#[derive(Debug, Clone, Copy)]
pub struct KnownMd5(pub [u8; 16]);

#[derive(Debug)]
pub struct CheckingConnector {
    pub shared: Arc<Shared>,
    pub mode: Md5Mode,
}

impl HttpConnector for CheckingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Checking { inner, shared: self.shared.clone(), mode: self.mode }))
    }
}

#[derive(Debug)]
struct Checking {
    inner: HttpClient,
    shared: Arc<Shared>,
    mode: Md5Mode,
}

/// Bodies above this are hashed on a blocking thread, so a multi-megabyte part never holds up
/// the async threads the live path shares.
const INLINE_HASH_MAX: usize = 64 * 1024;

/// The MD5 of a request body (a `PutPayload` of several chunks, or one `Bytes`).
async fn body_md5(body: &HttpRequestBody) -> Result<[u8; 16], HttpError> {
    use http_body::Body;
    // Collect the chunks (reference-counted: no copy), then hash.
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    if let Some(b) = body.as_bytes() {
        chunks.push(b.clone());
    } else {
        let mut b = body.clone();
        while let Some(frame) = futures::future::poll_fn(|cx| Pin::new(&mut b).poll_frame(cx)).await {
            if let Ok(data) = frame?.into_data() {
                chunks.push(data);
            }
        }
    }
    let hash = move || {
        let mut h = Md5::new();
        for c in &chunks {
            h.update(c);
        }
        <[u8; 16]>::from(h.finalize())
    };
    if body.content_length() <= INLINE_HASH_MAX {
        return Ok(hash());
    }
    tokio::task::spawn_blocking(hash).await.map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))
}

/// The MD5 a reply reports: Azure's `Content-MD5` (base64), or an S3 `ETag` that is a plain
/// MD5 in hex (multipart and encrypted objects have other ETags: not comparable).
fn reported_md5(resp: &HttpResponse) -> Option<[u8; 16]> {
    let h = resp.headers();
    if let Some(v) = h.get("content-md5").and_then(|v| v.to_str().ok()) {
        let b = base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()?;
        return b.try_into().ok();
    }
    if h.contains_key("x-ms-request-id") {
        return None; // Azure without Content-MD5 (e.g. it reported a CRC64 instead)
    }
    let etag = h.get("etag")?.to_str().ok()?.trim_matches('"');
    if etag.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(etag.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[async_trait::async_trait]
impl HttpService for Checking {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let n = req.body().content_length() as u64;
        let md5 = match req.extensions().get::<KnownMd5>() {
            Some(k) => Some(k.0),
            None if req.method() == Method::PUT && n > 0 => Some(body_md5(req.body()).await?),
            None => None,
        };
        if let Some(m) = md5
            && self.mode == Md5Mode::SendAndVerify
            && !req.headers().contains_key("content-md5")
        {
            let v = base64::engine::general_purpose::STANDARD.encode(m);
            req.headers_mut().insert("content-md5", HeaderValue::from_str(&v).expect("base64 is a header value"));
        }
        self.shared.pace(n).await;
        let resp = self.inner.execute(req).await?;
        self.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.bytes_sent.fetch_add(n, Ordering::Relaxed);
        if let Some(m) = md5
            && resp.status().is_success()
            && let Some(theirs) = reported_md5(&resp)
        {
            if theirs != m {
                self.shared.stats.md5_mismatches.fetch_add(1, Ordering::Relaxed);
                return Err(HttpError::new(
                    HttpErrorKind::Request,
                    std::io::Error::other("checksum mismatch: the service stored other bytes than were sent"),
                ));
            }
            self.shared.stats.md5_verified.fetch_add(1, Ordering::Relaxed);
        }
        Ok(resp)
    }
}

/// Request timeouts: an unreachable target fails fast (the outbox then backs off), a slow
/// but working link is given time for a part at the capped rate.
pub fn client_options(part_size: u64, cap_bytes_per_sec: Option<f64>) -> ClientOptions {
    let part_secs = cap_bytes_per_sec.map(|r| part_size as f64 / r).unwrap_or(0.0);
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs_f64(60.0 + 3.0 * part_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(headers: &[(&str, &str)]) -> HttpResponse {
        let mut b = http::Response::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(object_store::client::HttpResponseBody::from(bytes::Bytes::new())).unwrap()
    }

    #[tokio::test]
    async fn md5_of_bodies_and_what_services_report() {
        let data = bytes::Bytes::from_static(b"hello world");
        let want: [u8; 16] = Md5::digest(&data).into();
        assert_eq!(body_md5(&HttpRequestBody::from(data.clone())).await.unwrap(), want);
        let payload = object_store::PutPayload::from_iter([
            bytes::Bytes::from_static(b"hello "),
            bytes::Bytes::from_static(b"world"),
        ]);
        assert_eq!(body_md5(&HttpRequestBody::from(payload)).await.unwrap(), want);
        // A large body is hashed on a blocking thread, with the same result.
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let want_big: [u8; 16] = Md5::digest(&big).into();
        let payload = object_store::PutPayload::from_iter(big.chunks(300_000).map(bytes::Bytes::copy_from_slice));
        assert_eq!(body_md5(&HttpRequestBody::from(payload)).await.unwrap(), want_big);
        let b64 = base64::engine::general_purpose::STANDARD.encode(want);
        assert_eq!(reported_md5(&resp(&[("content-md5", &b64), ("x-ms-request-id", "1")])), Some(want));
        let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(reported_md5(&resp(&[("etag", &format!("\"{hex}\""))])), Some(want));
        assert_eq!(reported_md5(&resp(&[("etag", "\"0x8D1\""), ("x-ms-request-id", "1")])), None);
        assert_eq!(reported_md5(&resp(&[("etag", &format!("\"{hex}-3\""))])), None, "multipart ETag");
    }
}
