//! `rtsp_http`: RTSP tunnelled over HTTP (Apple's QuickTime scheme), as Axis, Hikvision, live555
//! and gst-rtsp-server serve it on their RTSP port.
//!
//! Two HTTP/1.0 connections to the camera's host and port (554 when the URL names none) share a
//! random `x-sessioncookie`:
//! - `GET <path>`: answered `HTTP/1.0 200 OK` and headers; after the blank line the body is the
//!   RTSP server→client byte stream (responses and `$`-interleaved RTP/RTCP) until one side closes.
//! - `POST <path>` (`Content-Length: 32767`, never answered): its body carries the client→server
//!   bytes, base64-encoded. Each chunk read from the client is encoded as one complete base64 block
//!   (`=` padding included). Servers decode 4-character groups as they come, so padded blocks can
//!   follow each other (glib's `g_base64_decode_step` in gst-rtsp-server; ffmpeg's and live555's
//!   clients send one padded block per request too). The declared length is a formality that
//!   servers ignore; a long session sends more than 32767 characters on the one POST, as ffmpeg does.
//!
//! retina only speaks RTSP over a TCP socket it opens itself, so [`open`] does the HTTP handshake,
//! binds a listener on 127.0.0.1:0 and returns `rtsp://127.0.0.1:<port>/<path>?<query>` for retina;
//! the one connection accepted there is bridged to the two HTTP connections by a task. Either side
//! closing (or failing) ends the other; the reason is kept ([`Tunnel::end_reason`]) for the pull's
//! failure message.
//! - The Request-URI of every RTSP request in the tunnel names the loopback address and port, not
//!   the camera's. Servers route by path (gst-rtsp-server does; a camera that insists on its own
//!   address in the Request-URI cannot be pulled this way). A camera's SDP may still carry absolute
//!   control URLs or a `Content-Base` naming its real address: retina sends every request, whatever
//!   its URI, on its one connection (`RtspConnection`), i.e. through the tunnel. Only its TEARDOWN
//!   retries open fresh connections (to the loopback port, where nothing listens any more), so the
//!   puller asks for `TeardownPolicy::Auto` in this mode: TEARDOWN once, on the tunnel. (Auto still
//!   retries for live555 servers older than 2017.06.04, retina's known TCP bug; those connections
//!   are refused, or in the unlucky case that a newer tunnel reused the port, take that tunnel's
//!   one slot: its session then fails once and reconnects.)
//! - HTTP authentication: credentials from the URL are sent as `Authorization: Basic` on the GET
//!   and the POST only after the GET was answered 401 (one retry). HTTP Digest is not supported.
//!   RTSP authentication (Basic or Digest on DESCRIBE, …) happens inside the tunnel, by retina.
//! - The first connection to the loopback port is taken: any local process could race retina for
//!   it during the few microseconds between bind and connect (on an appliance, only our processes).
//! - Buffers are fixed (64 KiB down, 4 KiB up, encoded on the fly): no queue; a slow side slows the
//!   other down (TCP backpressure), as on a direct connection.
//! - No HTTPS: `rtsps://` with `rtsp_http` is refused.

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// `Accept` of the GET and `Content-Type` of the POST.
pub const TUNNEL_CONTENT_TYPE: &str = "application/x-rtsp-tunnelled";
/// The POST's declared body length (the customary value; servers ignore it).
pub const POST_CONTENT_LENGTH: u32 = 32767;
/// Cap on the GET response's status line and headers.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;
/// Client→server bytes read (then base64-encoded) at a time.
const UP_CHUNK: usize = 4096;
/// Server→client bytes copied at a time.
const DOWN_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("{0}")]
    Url(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("the HTTP handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error("{what}: {source}")]
    Io { what: &'static str, source: io::Error },
    #[error("the camera closed the connection before answering the tunnel GET")]
    Closed,
    #[error("malformed answer to the tunnel GET: {0}")]
    Malformed(String),
    #[error("the answer to the tunnel GET has more than {MAX_RESPONSE_HEAD} bytes of headers")]
    HeadTooLong,
    #[error("the camera answered the tunnel GET with {version} {code} {reason}{}", status_hint(version, *code))]
    Status { version: String, code: u16, reason: String },
    #[error("the camera asks for HTTP authentication on the tunnel GET (401) and the URL has no credentials")]
    AuthRequired,
    #[error("the camera refused the URL's credentials on the tunnel GET (401 after HTTP Basic)")]
    AuthRefused,
    #[error("the camera asks for HTTP authentication on the tunnel GET with `{0}`; only Basic is supported there")]
    AuthUnsupported(String),
}

fn status_hint(version: &str, code: u16) -> &'static str {
    if version.starts_with("RTSP/") {
        " (an RTSP answer: the camera does not tunnel RTSP over HTTP on this port)"
    } else if code == 404 || code == 405 || code == 501 {
        " (does the camera tunnel RTSP over HTTP on this port?)"
    } else {
        ""
    }
}

/// Where the tunnel's two HTTP connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// For connecting (an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
    /// The `Host` header (`cam:554`, `[fd00::5]:554`).
    pub host_header: String,
    /// The Request-URI of the GET and the POST: the camera URL's path and query.
    pub path: String,
}

impl Target {
    pub fn from_url(url: &url::Url) -> Result<Self, TunnelError> {
        if url.scheme() != "rtsp" {
            return Err(TunnelError::Url(format!(
                "RTSP over HTTP needs an rtsp:// camera URL ({}:// is not supported)",
                url.scheme()
            )));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(TunnelError::Url("the camera URL has no host".into())),
        };
        let port = url.port().unwrap_or(554);
        let host_header = format!("{}:{port}", url.host_str().unwrap_or_default());
        let mut path = url.path().to_owned();
        if path.is_empty() {
            path.push('/');
        }
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Target { host, port, host_header, path })
    }
}

/// The URL retina connects to: the camera's path and query on the loopback port.
pub fn loopback_url(camera: &url::Url, port: u16) -> url::Url {
    let mut u = camera.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let _ = u.set_host(Some("127.0.0.1"));
    let _ = u.set_port(Some(port));
    u.set_fragment(None);
    u
}

/// 32 hex digits, from SipHash under the process's random keys (std's `RandomState`, seeded from
/// the OS), a counter and the clock: unique per tunnel and not guessable from outside.
pub fn new_cookie() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let mut out = String::with_capacity(32);
    for i in 0..2u8 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(t);
        h.write_u8(i);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// `Basic <base64(user:password)>`.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn common_headers(t: &Target, cookie: &str, user_agent: &str, authorization: Option<&str>) -> String {
    let mut s = format!(
        "Host: {}\r\nUser-Agent: {user_agent}\r\nx-sessioncookie: {cookie}\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n",
        t.host_header
    );
    if let Some(a) = authorization {
        s.push_str(&format!("Authorization: {a}\r\n"));
    }
    s
}

/// The GET that opens the server→client half.
pub fn get_request(t: &Target, cookie: &str, user_agent: &str, authorization: Option<&str>) -> String {
    format!(
        "GET {} HTTP/1.0\r\n{}Accept: {TUNNEL_CONTENT_TYPE}\r\n\r\n",
        t.path,
        common_headers(t, cookie, user_agent, authorization)
    )
}

/// The POST that opens the client→server half (its body follows, base64).
pub fn post_request(t: &Target, cookie: &str, user_agent: &str, authorization: Option<&str>) -> String {
    format!(
        "POST {} HTTP/1.0\r\n{}Content-Type: {TUNNEL_CONTENT_TYPE}\r\nContent-Length: {POST_CONTENT_LENGTH}\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n",
        t.path,
        common_headers(t, cookie, user_agent, authorization)
    )
}

/// Appends `data` to `out` as one complete (padded) base64 block.
pub fn encode_chunk(data: &[u8], out: &mut String) {
    STANDARD.encode_string(data, out);
}

/// The status line and headers of the GET's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// `HTTP/1.0`, `HTTP/1.1` (or `RTSP/1.0` from a camera that does not tunnel).
    pub version: String,
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// Every value of a header (case-insensitive name).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses the GET's answer from the start of `buf`. `Ok(None)`: incomplete, read more.
/// `Ok(Some((head, n)))`: the head took `buf[..n]`; what follows is RTSP from the server.
/// Lines end in CRLF or a bare LF; header lines without a colon are skipped.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, TunnelError> {
    let prefix = &buf[..buf.len().min(5)];
    if !b"HTTP/".starts_with(prefix) && !b"RTSP/".starts_with(prefix) {
        let shown = String::from_utf8_lossy(&buf[..buf.len().min(40)]).into_owned();
        return Err(TunnelError::Malformed(format!("not an HTTP response: {shown:?}")));
    }
    let window = &buf[..buf.len().min(MAX_RESPONSE_HEAD)];
    let mut lines = Vec::new();
    let mut start = 0;
    let end = loop {
        let Some(i) = window[start..].iter().position(|&b| b == b'\n') else {
            if buf.len() >= MAX_RESPONSE_HEAD {
                return Err(TunnelError::HeadTooLong);
            }
            return Ok(None);
        };
        let line = &window[start..start + i];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        start += i + 1;
        if line.is_empty() {
            break start;
        }
        lines.push(line);
    };
    let Some((status, fields)) = lines.split_first() else {
        return Err(TunnelError::Malformed("empty status line".into()));
    };
    let status = String::from_utf8_lossy(status);
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let code = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default().trim().to_owned();
    if !(version.starts_with("HTTP/") || version.starts_with("RTSP/")) {
        return Err(TunnelError::Malformed(format!("bad status line {status:?}")));
    }
    let code = match code.parse::<u16>() {
        Ok(c) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) && c >= 100 => c,
        _ => return Err(TunnelError::Malformed(format!("bad status line {status:?}"))),
    };
    let mut headers = Vec::with_capacity(fields.len());
    for f in fields {
        let f = String::from_utf8_lossy(f);
        if let Some((n, v)) = f.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Some((ResponseHead { version, code, reason, headers }, end)))
}

/// What to do after the GET's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetVerdict {
    /// 200: the tunnel's server→client half is open.
    Tunnel,
    /// 401 and credentials in the URL not tried yet: GET again with `Authorization: Basic`.
    RetryWithBasic,
}

/// Judges the GET's answer. `sent_basic`: this GET carried `Authorization: Basic` already.
pub fn judge_get(head: &ResponseHead, have_credentials: bool, sent_basic: bool) -> Result<GetVerdict, TunnelError> {
    let status = || TunnelError::Status { version: head.version.clone(), code: head.code, reason: head.reason.clone() };
    if !head.version.starts_with("HTTP/") {
        return Err(status());
    }
    match head.code {
        200 => Ok(GetVerdict::Tunnel),
        401 if sent_basic => Err(TunnelError::AuthRefused),
        401 if !have_credentials => Err(TunnelError::AuthRequired),
        401 => {
            let challenges: Vec<&str> = head.values("WWW-Authenticate").collect();
            let basic = |c: &&str| c.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("basic"));
            match challenges.first() {
                Some(first) if !challenges.iter().any(basic) => {
                    Err(TunnelError::AuthUnsupported(first.split(' ').next().unwrap_or_default().to_owned()))
                }
                _ => Ok(GetVerdict::RetryWithBasic),
            }
        }
        _ => Err(status()),
    }
}

/// An open tunnel: retina connects to [`Tunnel::url`].
#[derive(Debug)]
pub struct Tunnel {
    url: url::Url,
    ended: Arc<Mutex<Option<String>>>,
}

impl Tunnel {
    /// `rtsp://127.0.0.1:<port>/<path>?<query>`.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// Why the tunnel ended, once it has (set before the RTSP client's socket is closed).
    pub fn end_reason(&self) -> Option<String> {
        self.ended.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// Opens a tunnel to `camera` (an rtsp:// URL; its credentials, if any, must be passed apart):
/// GET (with one Basic retry on 401 when `credentials` are given) then POST, all within
/// `handshake`; then the loopback listener, which waits `handshake` at most for its one client.
pub async fn open(
    camera: &url::Url,
    credentials: Option<(&str, &str)>,
    user_agent: &str,
    handshake: Duration,
) -> Result<Tunnel, TunnelError> {
    let target = Target::from_url(camera)?;
    let cookie = new_cookie();
    let (get, body_start, post) = timeout(handshake, http_handshake(&target, &cookie, credentials, user_agent))
        .await
        .map_err(|_| TunnelError::Timeout(handshake))??;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|source| TunnelError::Io { what: "cannot bind the loopback listener", source })?;
    let port = listener.local_addr().map_err(|source| TunnelError::Io { what: "loopback listener", source })?.port();
    let ended = Arc::new(Mutex::new(None));
    let tunnel = Tunnel { url: loopback_url(camera, port), ended: ended.clone() };
    tracing::debug!(camera = %camera, local = %tunnel.url, "RTSP over HTTP: tunnel open");
    tokio::spawn(async move {
        let why = bridge(listener, handshake, get, body_start, post, &ended).await;
        tracing::debug!(%why, "RTSP over HTTP: tunnel closed");
    });
    Ok(tunnel)
}

async fn connect(t: &Target) -> Result<TcpStream, TunnelError> {
    let s = TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|source| TunnelError::Connect { addr: t.host_header.clone(), source })?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// The GET (and its Basic retry) and the POST: the GET connection, the RTSP bytes that came with
/// the GET's answer, the POST connection.
async fn http_handshake(
    t: &Target,
    cookie: &str,
    credentials: Option<(&str, &str)>,
    user_agent: &str,
) -> Result<(TcpStream, Vec<u8>, TcpStream), TunnelError> {
    let mut authorization: Option<String> = None;
    let (get, body_start) = loop {
        let mut s = connect(t).await?;
        let req = get_request(t, cookie, user_agent, authorization.as_deref());
        s.write_all(req.as_bytes())
            .await
            .map_err(|source| TunnelError::Io { what: "sending the tunnel GET", source })?;
        let (head, rest) = read_head(&mut s).await?;
        match (judge_get(&head, credentials.is_some(), authorization.is_some())?, credentials) {
            (GetVerdict::Tunnel, _) => break (s, rest),
            (GetVerdict::RetryWithBasic, Some((user, password))) => {
                authorization = Some(basic_authorization(user, password))
            }
            (GetVerdict::RetryWithBasic, None) => return Err(TunnelError::AuthRequired),
        }
    };
    let mut post = connect(t).await?;
    let req = post_request(t, cookie, user_agent, authorization.as_deref());
    post.write_all(req.as_bytes())
        .await
        .map_err(|source| TunnelError::Io { what: "sending the tunnel POST", source })?;
    Ok((get, body_start, post))
}

/// Reads the GET's answer: its head, and the bytes after it.
async fn read_head(s: &mut TcpStream) -> Result<(ResponseHead, Vec<u8>), TunnelError> {
    let mut buf = Vec::with_capacity(2048);
    loop {
        if let Some((head, n)) = parse_response_head(&buf)? {
            return Ok((head, buf.split_off(n)));
        }
        buf.reserve(2048);
        let n = s
            .read_buf(&mut buf)
            .await
            .map_err(|source| TunnelError::Io { what: "reading the answer to the tunnel GET", source })?;
        if n == 0 {
            return Err(if buf.is_empty() {
                TunnelError::Closed
            } else {
                TunnelError::Malformed("the connection closed inside the headers".into())
            });
        }
    }
}

/// Accepts the RTSP client and copies both ways until one side ends; returns (and records in
/// `ended`, before the client's socket closes) why.
async fn bridge(
    listener: TcpListener,
    accept_wait: Duration,
    get: TcpStream,
    body_start: Vec<u8>,
    post: TcpStream,
    ended: &Mutex<Option<String>>,
) -> String {
    let client = match timeout(accept_wait, listener.accept()).await {
        Ok(Ok((c, _))) => Some(c),
        Ok(Err(e)) => {
            record(ended, format!("the tunnel's loopback listener failed: {e}"));
            None
        }
        Err(_) => {
            record(ended, "no RTSP client connected to the tunnel".to_owned());
            None
        }
    };
    drop(listener);
    let Some(client) = client else { return end_reason(ended) };
    let _ = client.set_nodelay(true);
    let (mut from_client, mut to_client) = client.into_split();
    // The GET's write half stays open (dropping it would send a FIN some servers take as the end).
    let (mut from_get, _get_write) = get.into_split();
    let (mut from_post, mut to_post) = post.into_split();

    let down = async {
        if !body_start.is_empty() {
            to_client.write_all(&body_start).await.map_err(|e| format!("the RTSP client's socket failed: {e}"))?;
        }
        let mut buf = vec![0u8; DOWN_CHUNK];
        loop {
            let n = from_get.read(&mut buf).await.map_err(|e| format!("tunnel GET connection failed: {e}"))?;
            if n == 0 {
                return Err::<Infallible, _>("the camera closed the tunnel (GET connection)".to_owned());
            }
            to_client.write_all(&buf[..n]).await.map_err(|e| format!("the RTSP client's socket failed: {e}"))?;
        }
    };
    let up = async {
        let mut buf = vec![0u8; UP_CHUNK];
        let mut enc = String::with_capacity(UP_CHUNK.div_ceil(3) * 4);
        loop {
            let n = from_client.read(&mut buf).await.map_err(|e| format!("the RTSP client's socket failed: {e}"))?;
            if n == 0 {
                return Err::<Infallible, _>("the RTSP client closed the tunnel".to_owned());
            }
            enc.clear();
            encode_chunk(&buf[..n], &mut enc);
            to_post.write_all(enc.as_bytes()).await.map_err(|e| format!("tunnel POST connection failed: {e}"))?;
        }
    };
    // Nothing is expected on the POST connection: anything that comes is dropped; its end ends the
    // tunnel (the client→server half is gone).
    let post_watch = async {
        let mut buf = [0u8; 512];
        loop {
            match from_post.read(&mut buf).await {
                Ok(0) => return Err::<Infallible, _>("the camera closed the tunnel's POST connection".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("tunnel POST connection failed: {e}")),
            }
        }
    };
    let Err(why) = tokio::select! {
        r = down => r,
        r = up => r,
        r = post_watch => r,
    };
    record(ended, why.clone());
    why
}

fn record(ended: &Mutex<Option<String>>, why: String) {
    if let Ok(mut g) = ended.lock() {
        g.get_or_insert(why);
    }
}

fn end_reason(ended: &Mutex<Option<String>>) -> String {
    ended.lock().ok().and_then(|g| g.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::from_url(&url::Url::parse("rtsp://cam.local:8554/axis-media/media.amp?videocodec=h264").unwrap())
            .unwrap()
    }

    fn head(text: &str) -> ResponseHead {
        parse_response_head(text.as_bytes()).unwrap().unwrap().0
    }

    /// What a block-by-block server decoder (glib's `g_base64_decode_step`) makes of the POST body.
    fn decode_groups(s: &str) -> Vec<u8> {
        s.as_bytes()
            .chunks(4)
            .flat_map(|g| {
                let mut d = STANDARD.decode(g).expect("valid group");
                d.truncate(3);
                d
            })
            .collect()
    }

    #[test]
    fn targets_and_loopback_urls() {
        let t = target();
        assert_eq!((t.host.as_str(), t.port, t.host_header.as_str()), ("cam.local", 8554, "cam.local:8554"));
        assert_eq!(t.path, "/axis-media/media.amp?videocodec=h264");
        let t = Target::from_url(&url::Url::parse("rtsp://[fd00::5]/").unwrap()).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.host_header.as_str(), t.path.as_str()),
            ("fd00::5", 554, "[fd00::5]:554", "/")
        );
        assert_eq!(Target::from_url(&url::Url::parse("rtsp://10.0.0.5").unwrap()).unwrap().path, "/");
        let e = Target::from_url(&url::Url::parse("rtsps://cam/x").unwrap()).unwrap_err();
        assert!(e.to_string().contains("rtsps:// is not supported"), "{e}");
        let u = loopback_url(&url::Url::parse("rtsp://u:p@cam:8554/s/1?a=b#f").unwrap(), 40001);
        assert_eq!(u.as_str(), "rtsp://127.0.0.1:40001/s/1?a=b");
        let c = new_cookie();
        assert_eq!(c.len(), 32);
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(c, new_cookie());
    }

    #[test]
    fn handshake_text() {
        let t = target();
        assert_eq!(
            get_request(&t, "c00k1e", "rms-edge/1", None),
            "GET /axis-media/media.amp?videocodec=h264 HTTP/1.0\r\nHost: cam.local:8554\r\nUser-Agent: rms-edge/1\r\n\
             x-sessioncookie: c00k1e\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
             Accept: application/x-rtsp-tunnelled\r\n\r\n"
        );
        let auth = basic_authorization("admin", "p@ss:w");
        assert_eq!(auth, "Basic YWRtaW46cEBzczp3");
        assert_eq!(
            post_request(&t, "c00k1e", "rms-edge/1", Some(&auth)),
            "POST /axis-media/media.amp?videocodec=h264 HTTP/1.0\r\nHost: cam.local:8554\r\nUser-Agent: rms-edge/1\r\n\
             x-sessioncookie: c00k1e\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
             Authorization: Basic YWRtaW46cEBzczp3\r\nContent-Type: application/x-rtsp-tunnelled\r\n\
             Content-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n"
        );
        assert!(get_request(&t, "c", "ua", Some(&auth)).contains("\r\nAuthorization: Basic YWRtaW46cEBzczp3\r\n"));
    }

    #[test]
    fn base64_chunks_are_complete_blocks() {
        let req = b"OPTIONS rtsp://127.0.0.1:40001/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        // Whatever the chunking, every block is padded to 4 characters and the concatenation decodes
        // group by group to the original bytes.
        for split in [1usize, 2, 3, 4, 7, 30, req.len()] {
            let mut body = String::new();
            for chunk in req.chunks(split) {
                let before = body.len();
                encode_chunk(chunk, &mut body);
                assert_eq!((body.len() - before) % 4, 0);
                assert_eq!(body.len() - before, chunk.len().div_ceil(3) * 4);
            }
            assert_eq!(decode_groups(&body), req, "split {split}");
        }
        let mut s = String::new();
        encode_chunk(b"A", &mut s);
        encode_chunk(b"BC", &mut s);
        encode_chunk(b"DEF", &mut s);
        assert_eq!(s, "QQ==QkM=REVG");
    }

    #[test]
    fn response_heads() {
        // gst-rtsp-server 1.22, verbatim, then the first RTSP bytes.
        let gst = "HTTP/1.0 200 OK\r\nServer: GStreamer RTSP Server\r\nConnection: close\r\nCache-Control: no-store\r\n\
                   Pragma: no-cache\r\nX-Server-IP-Address: 127.0.0.1\r\nContent-Type: application/x-rtsp-tunnelled\r\n\
                   Date: Fri, 27 Nov 2026 15:46:48 GMT\r\n\r\nRTSP/1.0 200 OK\r\n";
        let (h, n) = parse_response_head(gst.as_bytes()).unwrap().unwrap();
        assert_eq!((h.version.as_str(), h.code, h.reason.as_str()), ("HTTP/1.0", 200, "OK"));
        assert_eq!(h.values("content-type").collect::<Vec<_>>(), ["application/x-rtsp-tunnelled"]);
        assert_eq!(&gst[n..], "RTSP/1.0 200 OK\r\n");
        // Incomplete at every cut before the blank line.
        let end = gst.find("\r\n\r\n").unwrap() + 4;
        for cut in 0..end {
            assert!(parse_response_head(&gst.as_bytes()[..cut]).unwrap().is_none(), "cut {cut}");
        }
        // Bare LF, no reason phrase, junk header line skipped.
        let lf = b"HTTP/1.1 200\nno colon here\nX-A:  b \n\n$\x00";
        let (h, n) = parse_response_head(lf).unwrap().unwrap();
        assert_eq!((h.code, h.reason.as_str(), h.headers.len(), n), (200, "", 1, lf.len() - 2));
        assert_eq!(h.values("x-a").next(), Some("b"));
        // Not HTTP: refused at once, not after 8 KiB.
        assert!(matches!(parse_response_head(b"<html>"), Err(TunnelError::Malformed(_))));
        assert!(matches!(parse_response_head(b"HTTP/1.0 2x0 OK\r\n\r\n"), Err(TunnelError::Malformed(_))));
        assert!(matches!(parse_response_head(b"HTTP/1.0 99 Low\r\n\r\n"), Err(TunnelError::Malformed(_))));
        let mut long = b"HTTP/1.0 200 OK\r\n".to_vec();
        long.resize(MAX_RESPONSE_HEAD, b'a');
        assert!(matches!(parse_response_head(&long), Err(TunnelError::HeadTooLong)));
        assert!(parse_response_head(&long[..MAX_RESPONSE_HEAD - 1]).unwrap().is_none());
    }

    #[test]
    fn get_verdicts() {
        let ok = head("HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(judge_get(&ok, false, false).unwrap(), GetVerdict::Tunnel);
        let e = judge_get(&head("HTTP/1.0 404 Not Found\r\n\r\n"), true, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the camera answered the tunnel GET with HTTP/1.0 404 Not Found (does the camera tunnel RTSP over HTTP on this port?)"
        );
        let e = judge_get(&head("RTSP/1.0 400 Bad Request\r\nCSeq: 0\r\n\r\n"), true, false).unwrap_err();
        assert!(e.to_string().contains("does not tunnel RTSP over HTTP"), "{e}");
        assert!(matches!(judge_get(&head("RTSP/1.0 200 OK\r\n\r\n"), true, false), Err(TunnelError::Status { .. })));
        assert!(matches!(
            judge_get(&head("HTTP/1.1 302 Found\r\n\r\n"), true, false),
            Err(TunnelError::Status { code: 302, .. })
        ));

        // 401: one retry with Basic when the URL has credentials.
        let basic = head("HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n");
        assert_eq!(judge_get(&basic, true, false).unwrap(), GetVerdict::RetryWithBasic);
        assert!(matches!(judge_get(&basic, true, true), Err(TunnelError::AuthRefused)));
        assert!(matches!(judge_get(&basic, false, false), Err(TunnelError::AuthRequired)));
        let bare = head("HTTP/1.0 401 Unauthorized\r\n\r\n");
        assert_eq!(judge_get(&bare, true, false).unwrap(), GetVerdict::RetryWithBasic);
        let both = head(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"c\", nonce=\"n\"\r\nWWW-Authenticate: basic realm=\"c\"\r\n\r\n",
        );
        assert_eq!(judge_get(&both, true, false).unwrap(), GetVerdict::RetryWithBasic);
        let digest = head("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"c\", nonce=\"n\"\r\n\r\n");
        match judge_get(&digest, true, false) {
            Err(TunnelError::AuthUnsupported(s)) => assert_eq!(s, "Digest"),
            other => panic!("{other:?}"),
        }
    }

    /// A fake camera on a loopback port: answers the first GET 401 (Basic) when `want_auth`, then
    /// tunnels: what comes on the POST is decoded and echoed upper-cased on the GET connection.
    /// Returns the port and the requests it saw (GET, POST heads).
    async fn fake_camera(want_auth: Option<&'static str>) -> (u16, tokio::sync::mpsc::Receiver<String>) {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (seen_tx, seen) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut get = None;
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = Vec::new();
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut b = [0u8; 1024];
                    let n = s.read(&mut b).await.unwrap();
                    buf.extend_from_slice(&b[..n]);
                }
                let text = String::from_utf8(buf).unwrap();
                seen_tx.send(text.clone()).await.unwrap();
                if text.starts_with("GET ") {
                    if let Some(a) = want_auth
                        && !text.contains(&format!("Authorization: {a}\r\n"))
                    {
                        s.write_all(b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n")
                            .await
                            .unwrap();
                        continue;
                    }
                    s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\nHELLO ")
                        .await
                        .unwrap();
                    get = Some(s);
                } else {
                    let mut get = get.take().unwrap();
                    let mut pending = String::new();
                    let mut b = [0u8; 1024];
                    loop {
                        let n = s.read(&mut b).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        pending.push_str(std::str::from_utf8(&b[..n]).unwrap());
                        let whole = pending.len() / 4 * 4;
                        let d = decode_groups(&pending[..whole]);
                        pending.drain(..whole);
                        get.write_all(&d.to_ascii_uppercase()).await.unwrap();
                    }
                }
            }
        });
        (port, seen)
    }

    async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        timeout(Duration::from_secs(5), s.read_exact(&mut v)).await.unwrap().unwrap();
        v
    }

    #[tokio::test]
    async fn tunnel_bridges_both_ways_and_retries_401_with_basic() {
        let (port, mut seen) = fake_camera(Some("Basic dTpw")).await;
        let cam = url::Url::parse(&format!("rtsp://localhost:{port}/cam?x=1")).unwrap();
        let t = open(&cam, Some(("u", "p")), "test-agent", Duration::from_secs(5)).await.unwrap();
        assert_eq!(t.url().host_str(), Some("127.0.0.1"));
        assert_eq!(t.url().path(), "/cam");
        assert_eq!(t.url().query(), Some("x=1"));
        let first = seen.recv().await.unwrap();
        assert!(first.starts_with("GET /cam?x=1 HTTP/1.0\r\n") && !first.contains("Authorization"), "{first}");
        let second = seen.recv().await.unwrap();
        assert!(second.contains("Authorization: Basic dTpw\r\n"), "{second}");
        let cookie = |s: &str| s.lines().find_map(|l| l.strip_prefix("x-sessioncookie: ")).unwrap().to_owned();
        let post = seen.recv().await.unwrap();
        assert!(post.starts_with("POST /cam?x=1 HTTP/1.0\r\n") && post.contains("Authorization: Basic dTpw\r\n"));
        assert_eq!(cookie(&post), cookie(&second));

        let mut c = TcpStream::connect(("127.0.0.1", t.url().port().unwrap())).await.unwrap();
        // The bytes that came with the GET's answer, then the echo of what went up the POST.
        assert_eq!(read_exactly(&mut c, 6).await, b"HELLO ");
        c.write_all(b"options rtsp://x/ rtsp/1.0\r\n").await.unwrap();
        assert_eq!(read_exactly(&mut c, 28).await, b"OPTIONS RTSP://X/ RTSP/1.0\r\n");
        c.write_all(b"a").await.unwrap();
        c.write_all(b"bc").await.unwrap();
        assert_eq!(read_exactly(&mut c, 3).await, b"ABC");
        assert_eq!(t.end_reason(), None);
        // The only connection: a second client is refused.
        assert!(TcpStream::connect(("127.0.0.1", t.url().port().unwrap())).await.is_err());
        // The client leaving ends the tunnel (the camera sees its POST close).
        drop(c);
        for _ in 0..100 {
            if t.end_reason().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(t.end_reason().as_deref(), Some("the RTSP client closed the tunnel"));
    }

    #[tokio::test]
    async fn camera_closing_ends_the_client_connection() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut g, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = g.read(&mut b).await.unwrap();
            g.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
            let (mut p, _) = l.accept().await.unwrap();
            let _ = p.read(&mut b).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(g);
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(p);
        });
        let cam = url::Url::parse(&format!("rtsp://127.0.0.1:{port}/")).unwrap();
        let t = open(&cam, None, "ua", Duration::from_secs(5)).await.unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", t.url().port().unwrap())).await.unwrap();
        let mut b = [0u8; 16];
        let n = timeout(Duration::from_secs(3), c.read(&mut b)).await.unwrap().unwrap();
        assert_eq!(n, 0);
        assert_eq!(t.end_reason().as_deref(), Some("the camera closed the tunnel (GET connection)"));
    }

    #[tokio::test]
    async fn handshake_failures() {
        // A camera that answers every GET 401: no credentials, then wrong credentials.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let gets = Arc::new(AtomicU64::new(0));
        let g2 = gets.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 2048];
                let _ = s.read(&mut b).await;
                g2.fetch_add(1, Ordering::Relaxed);
                let _ = s.write_all(b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n").await;
            }
        });
        let cam = url::Url::parse(&format!("rtsp://127.0.0.1:{port}/s")).unwrap();
        let e = open(&cam, None, "ua", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, TunnelError::AuthRequired), "{e}");
        assert_eq!(gets.load(Ordering::Relaxed), 1);
        let e = open(&cam, Some(("u", "bad")), "ua", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, TunnelError::AuthRefused), "{e}");
        assert_eq!(gets.load(Ordering::Relaxed), 3, "exactly one retry");

        // Silence: the handshake timeout.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let cam = url::Url::parse(&format!("rtsp://127.0.0.1:{port}/s")).unwrap();
        let e = open(&cam, None, "ua", Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(e, TunnelError::Timeout(_)), "{e}");

        // Nobody listening.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap().local_addr().unwrap().port();
        let cam = url::Url::parse(&format!("rtsp://127.0.0.1:{port}/s")).unwrap();
        let e = open(&cam, None, "ua", Duration::from_secs(2)).await.unwrap_err();
        assert!(e.to_string().starts_with(&format!("cannot connect to 127.0.0.1:{port}")), "{e}");
    }
}
