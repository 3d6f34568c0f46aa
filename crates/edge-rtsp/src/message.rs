//! RTSP/1.0 requests as a server reads them from a TCP stream (RFC 2326 §6), with the binary
//! interleaved frames (`$`, channel, 16-bit length; §10.12) that share the stream during
//! RECORD. Hand-written: the RTSP crates on crates.io are clients (retina) or unmaintained, and
//! what a server needs is small. Every size is capped ([`Limits`]) before it is buffered, so a
//! 1 MB request line is refused after the first few kilobytes.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line (method, URI, version), in bytes.
    pub max_request_line: usize,
    /// The whole header block after the request line.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Content-Length (an SDP is a few hundred bytes).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_request_line: 4096, max_header_bytes: 16 * 1024, max_headers: 64, max_body: 64 * 1024 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("request line longer than {0} bytes")]
    RequestLineTooLong(usize),
    #[error("header block longer than {0} bytes")]
    HeadersTooLarge(usize),
    #[error("more than {0} headers")]
    TooManyHeaders(usize),
    #[error("body of {0} bytes is larger than allowed")]
    BodyTooLarge(usize),
    #[error("unsupported protocol version {0:?}")]
    Version(String),
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

impl ParseError {
    /// The status to answer with before closing the connection.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            ParseError::RequestLineTooLong(_) => (414, "Request-URI Too Large"),
            ParseError::HeadersTooLarge(_) | ParseError::TooManyHeaders(_) => {
                (400, "Bad Request (Request Header Fields Too Large)")
            }
            ParseError::BodyTooLarge(_) => (413, "Request Entity Too Large"),
            ParseError::Version(_) => (505, "RTSP Version Not Supported"),
            ParseError::Malformed(_) => (400, "Bad Request"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> Option<&str> {
        self.header("CSeq")
    }
}

/// What the stream holds next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Request(Request),
    /// An interleaved RTP/RTCP packet.
    Interleaved {
        channel: u8,
        data: Bytes,
    },
}

/// Incremental reader of a server's TCP stream.
#[derive(Debug, Default)]
pub struct Reader {
    buf: BytesMut,
    limits: Limits,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Reader {
    pub fn new(limits: Limits) -> Self {
        Reader { buf: BytesMut::new(), limits }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete request or frame; `Ok(None)` until more bytes arrive. After an error
    /// the stream cannot be resynchronized: answer and close.
    pub fn next_input(&mut self) -> Result<Option<Input>, ParseError> {
        // Stray CR/LF between messages are allowed (keep-alive habits of some clients).
        while matches!(self.buf.first(), Some(b'\r' | b'\n')) {
            self.buf.advance(1);
        }
        let Some(&first) = self.buf.first() else { return Ok(None) };
        if first == b'$' {
            if self.buf.len() < 4 {
                return Ok(None);
            }
            let channel = self.buf[1];
            let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            if self.buf.len() < 4 + len {
                return Ok(None);
            }
            self.buf.advance(4);
            let data = self.buf.split_to(len).freeze();
            return Ok(Some(Input::Interleaved { channel, data }));
        }
        // Request line, bounded before the line ends.
        let line_end = match find(&self.buf[..self.buf.len().min(self.limits.max_request_line + 2)], b"\n") {
            Some(i) => i,
            None if self.buf.len() > self.limits.max_request_line => {
                return Err(ParseError::RequestLineTooLong(self.limits.max_request_line));
            }
            None => return Ok(None),
        };
        let head_limit = line_end + 1 + self.limits.max_header_bytes + 4;
        let window = &self.buf[..self.buf.len().min(head_limit)];
        let head_end = match (find(window, b"\r\n\r\n"), find(window, b"\n\n")) {
            (Some(a), Some(b)) if b + 2 < a + 4 => b + 2,
            (Some(a), _) => a + 4,
            (None, Some(b)) => b + 2,
            (None, None) if self.buf.len() >= head_limit => {
                return Err(ParseError::HeadersTooLarge(self.limits.max_header_bytes));
            }
            (None, None) => return Ok(None),
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| ParseError::Malformed("not UTF-8"))?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ').filter(|p| !p.is_empty());
        let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::Malformed("request line is not METHOD URI RTSP/1.0"));
        };
        if !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-') {
            return Err(ParseError::Malformed("method"));
        }
        if !version.starts_with("RTSP/") {
            return Err(ParseError::Malformed("not an RTSP request"));
        }
        if version != "RTSP/1.0" {
            return Err(ParseError::Version(version.chars().take(16).collect()));
        }
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once(':').ok_or(ParseError::Malformed("header without ':'"))?;
            if k.is_empty() || k.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                return Err(ParseError::Malformed("header name"));
            }
            if headers.len() == self.limits.max_headers {
                return Err(ParseError::TooManyHeaders(self.limits.max_headers));
            }
            headers.push((k.to_owned(), v.trim().to_owned()));
        }
        let mut req = Request { method: method.to_owned(), uri: uri.to_owned(), headers, body: Bytes::new() };
        let len = match req.header("Content-Length") {
            Some(v) => v.parse::<usize>().map_err(|_| ParseError::Malformed("Content-Length"))?,
            None => 0,
        };
        if len > self.limits.max_body {
            return Err(ParseError::BodyTooLarge(len));
        }
        if self.buf.len() < head_end + len {
            return Ok(None);
        }
        self.buf.advance(head_end);
        req.body = self.buf.split_to(len).freeze();
        Ok(Some(Input::Request(req)))
    }
}

/// A response, serialized with its CSeq echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Response { status, reason: reason.into(), headers: Vec::new(), body: Bytes::new() }
    }

    pub fn ok() -> Self {
        Self::new(200, "OK")
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_owned(), v.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    pub fn to_bytes(&self, cseq: Option<&str>) -> Bytes {
        let mut s = format!("RTSP/1.0 {} {}\r\n", self.status, self.reason);
        if let Some(c) = cseq {
            s.push_str(&format!("CSeq: {c}\r\n"));
        }
        s.push_str("Server: rms-edge\r\n");
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.body.is_empty() {
            s.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        s.push_str("\r\n");
        let mut out = BytesMut::from(s.as_bytes());
        out.extend_from_slice(&self.body);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> Vec<Result<Input, ParseError>> {
        let mut r = Reader::new(Limits::default());
        r.push(data);
        let mut out = Vec::new();
        loop {
            match r.next_input() {
                Ok(Some(i)) => out.push(Ok(i)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn requests_bodies_and_interleaved_frames() {
        let data = b"ANNOUNCE rtsp://h/live/t RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n$\x01\x00\x03abcOPTIONS * RTSP/1.0\r\nCSeq: 3\r\n\r\n";
        let out = read_all(data);
        assert_eq!(out.len(), 3);
        let Ok(Input::Request(r)) = &out[0] else { panic!() };
        assert_eq!((r.method.as_str(), r.uri.as_str(), r.cseq()), ("ANNOUNCE", "rtsp://h/live/t", Some("2")));
        assert_eq!(&r.body[..], b"v=0\r\n");
        assert_eq!(out[1], Ok(Input::Interleaved { channel: 1, data: Bytes::from_static(b"abc") }));
        let Ok(Input::Request(r)) = &out[2] else { panic!() };
        assert_eq!(r.header("cseq"), Some("3"));
    }

    #[test]
    fn partial_input_waits() {
        let mut r = Reader::new(Limits::default());
        r.push(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n");
        assert_eq!(r.next_input(), Ok(None));
        r.push(b"\r\n$\x00\x00\x04ab");
        assert!(matches!(r.next_input(), Ok(Some(Input::Request(_)))));
        assert_eq!(r.next_input(), Ok(None));
        r.push(b"cd");
        assert!(matches!(r.next_input(), Ok(Some(Input::Interleaved { channel: 0, .. }))));
    }

    #[test]
    fn oversized_and_malformed_input_is_refused_early() {
        let mut r = Reader::new(Limits::default());
        r.push(b"OPTIONS rtsp://h/");
        r.push(&vec![b'a'; 5000]);
        assert_eq!(r.next_input(), Err(ParseError::RequestLineTooLong(4096)));
        assert_eq!(r.next_input().unwrap_err().status().0, 414);

        let mut big = b"OPTIONS * RTSP/1.0\r\n".to_vec();
        for i in 0..2000 {
            big.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        assert!(matches!(read_all(&big).pop(), Some(Err(ParseError::HeadersTooLarge(_)))));
        assert!(matches!(read_all(b"GET / HTTP/1.1\r\n\r\n").pop(), Some(Err(ParseError::Malformed(_)))));
        assert!(matches!(read_all(b"OPTIONS * RTSP/2.0\r\n\r\n").pop(), Some(Err(ParseError::Version(_)))));
        assert!(matches!(
            read_all(b"ANNOUNCE x RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n").pop(),
            Some(Err(ParseError::BodyTooLarge(_)))
        ));
        assert!(matches!(read_all(b"\x16\x03\x01garbage\r\n\r\n").pop(), Some(Err(ParseError::Malformed(_)))));
    }

    #[test]
    fn responses_echo_cseq() {
        let b = Response::ok().header("Session", "abc").body("application/sdp", "v=0\r\n").to_bytes(Some("7"));
        let s = std::str::from_utf8(&b).unwrap();
        assert!(s.starts_with("RTSP/1.0 200 OK\r\nCSeq: 7\r\n"));
        assert!(s.contains("Content-Length: 5\r\n\r\nv=0\r\n"));
    }
}
