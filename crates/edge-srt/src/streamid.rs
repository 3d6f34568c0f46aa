//! SRT stream ids in every form encoders send, to the live event's access token.
//!
//! - the bare token: `abc123`
//! - a path: `live/abc123`, `/live/abc123/cam1` (`<app>/<token>[/<streamName>]`, as RTMP)
//! - the SRT access-control syntax: `#!::r=abc123,m=publish`, `#!::u=user,r=live/abc123`,
//!   `#!::h=host,r=...`; the resource is `r` (else `s`, else `u`)
//! - URL-encoded (`%23%21%3A%3Ar%3Dabc123`), once or twice
//! - a whole query string or URL pasted as the stream id: `streamid=abc123&passphrase=...`,
//!   `srt://host:9000?streamid=abc123&latency=...`, `srt://host:9000/live/abc123`
//! - OBS's truncation: OBS (through ffmpeg's URL parser) ends the stream id at the first `&`,
//!   so a value must never need one; and encoders that pass the query string through verbatim
//!   send `abc123&passphrase=...`: everything from the first `&` is dropped here too.
//!
//! Path forms are ambiguous (`host/app/stream` is SRT Live Server's; `app/token` the AMS
//! one): [`StreamTarget::key`] is the best guess and [`StreamTarget::candidates`] lists every
//! segment in the order to try, so the authorizer can match whichever one is a known token.

use percent_encoding::percent_decode_str;

/// The longest stream id SRT carries.
pub const MAX_STREAM_ID: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// `m=publish`, or no mode: the caller sends media.
    Publish,
    /// `m=request`: the caller wants to play (not served over SRT).
    Request,
    /// `m=bidirectional`: treated as publish.
    Bidirectional,
}

/// What a stream id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    /// The access token (stream key), best guess.
    pub key: String,
    /// The AMS stream name after the token (`live/<token>/<streamName>`), if any.
    pub stream_name: Option<String>,
    /// `u=` of the access-control syntax.
    pub user: Option<String>,
    /// `h=` of the access-control syntax.
    pub host: Option<String>,
    pub mode: StreamMode,
    /// Every path segment, best guess first: look them up in this order.
    candidates: Vec<String>,
}

impl StreamTarget {
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.candidates.iter().map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("empty stream id")]
    Empty,
    #[error("stream id longer than {MAX_STREAM_ID} bytes")]
    TooLong,
    #[error("no resource (stream key) in stream id")]
    NoKey,
    #[error("unknown mode {0:?} in stream id")]
    BadMode(String),
}

/// Parses a stream id as sent by the caller (see the module documentation for the forms).
pub fn parse_stream_id(raw: &str) -> Result<StreamTarget, StreamIdError> {
    if raw.len() > MAX_STREAM_ID {
        return Err(StreamIdError::TooLong);
    }
    let mut s = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_owned();
    // Decoded at most twice: a value encoded for a URL and then again by a form or a shell.
    for _ in 0..2 {
        if !s.contains('%') {
            break;
        }
        let decoded = percent_decode_str(&s).decode_utf8_lossy().into_owned();
        if decoded == s {
            break;
        }
        s = decoded;
    }
    parse_decoded(&s, 0)
}

fn parse_decoded(s: &str, depth: u8) -> Result<StreamTarget, StreamIdError> {
    let mut s = s.trim();
    if let Some(url) = strip_prefix_ci(s, "srt://") {
        // A whole URL: its streamid parameter, else its path.
        let (authority_path, query) = url.split_once('?').unwrap_or((url, ""));
        if let Some(value) = query_value(query, "streamid")
            && depth == 0
        {
            return parse_decoded(value, depth + 1);
        }
        s = authority_path.split_once('/').map_or("", |(_, path)| path);
    }
    let s = s.strip_prefix('?').unwrap_or(s);
    let s = strip_prefix_ci(s, "streamid=").unwrap_or(s);
    // OBS ends the value at the first `&`; verbatim query strings carry more parameters.
    let s = s.split('&').next().unwrap_or("").trim();
    if s.is_empty() {
        return Err(StreamIdError::Empty);
    }
    let mut user = None;
    let mut host = None;
    let mut mode = StreamMode::Publish;
    let resource = match s.strip_prefix("#!::") {
        Some(list) => {
            let (mut r, mut session) = (None, None);
            for entry in list.split(',') {
                let Some((k, v)) = entry.split_once('=') else { continue };
                let v = v.trim();
                match k.trim() {
                    "r" => r = Some(v),
                    "s" => session = Some(v),
                    "u" => user = Some(v.to_owned()),
                    "h" => host = Some(v.to_owned()),
                    "m" => {
                        mode = match v.to_ascii_lowercase().as_str() {
                            "publish" => StreamMode::Publish,
                            "request" => StreamMode::Request,
                            "bidirectional" => StreamMode::Bidirectional,
                            _ => return Err(StreamIdError::BadMode(v.to_owned())),
                        }
                    }
                    _ => {}
                }
            }
            r.or(session).or(user.as_deref()).unwrap_or("").to_owned()
        }
        None => s.to_owned(),
    };
    let segments: Vec<&str> = resource.split('/').map(str::trim).filter(|p| !p.is_empty()).collect();
    let (key, stream_name) = match segments.as_slice() {
        [] => return Err(StreamIdError::NoKey),
        [key] => (key.to_string(), None),
        [_, key, rest @ ..] => (key.to_string(), (!rest.is_empty()).then(|| rest.join("/"))),
    };
    let mut candidates = vec![key.clone()];
    candidates.extend(segments.iter().filter(|s| **s != key).map(|s| s.to_string()));
    Ok(StreamTarget { key, stream_name, user, host, mode, candidates })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        parse_stream_id(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}")).key
    }

    #[test]
    fn bare_token_and_paths() {
        assert_eq!(key("abc123"), "abc123");
        assert_eq!(key("  abc123\0\0"), "abc123");
        assert_eq!(key("live/abc123"), "abc123");
        let t = parse_stream_id("/live/abc123/cam1/").unwrap();
        assert_eq!((t.key.as_str(), t.stream_name.as_deref()), ("abc123", Some("cam1")));
        assert_eq!(t.mode, StreamMode::Publish);
    }

    #[test]
    fn access_control_syntax() {
        let t = parse_stream_id("#!::r=abc123,m=publish").unwrap();
        assert_eq!((t.key.as_str(), t.mode), ("abc123", StreamMode::Publish));
        let t = parse_stream_id("#!::u=alice,r=live/abc123").unwrap();
        assert_eq!((t.key.as_str(), t.user.as_deref()), ("abc123", Some("alice")));
        let t = parse_stream_id("#!::h=venue.example,r=abc123,m=request").unwrap();
        assert_eq!((t.host.as_deref(), t.mode), (Some("venue.example"), StreamMode::Request));
        assert_eq!(parse_stream_id("#!::m=bidirectional,r=abc123").unwrap().mode, StreamMode::Bidirectional);
        assert_eq!(key("#!:: r = abc123 , t=stream"), "abc123");
        // No r: the session id, then the user name.
        assert_eq!(key("#!::s=abc123"), "abc123");
        assert_eq!(key("#!::u=abc123"), "abc123");
        assert_eq!(parse_stream_id("#!::m=publish"), Err(StreamIdError::NoKey));
        assert_eq!(parse_stream_id("#!::r=x,m=play"), Err(StreamIdError::BadMode("play".into())));
    }

    #[test]
    fn url_encoded_once_or_twice() {
        assert_eq!(key("%23%21%3A%3Ar%3Dabc123%2Cm%3Dpublish"), "abc123");
        assert_eq!(key("%2523%2521%253A%253Ar%253Dabc123"), "abc123");
        assert_eq!(key("live%2Fabc123"), "abc123");
    }

    #[test]
    fn obs_truncation_and_pasted_query_strings() {
        // What arrives when an encoder passes the query through verbatim.
        assert_eq!(key("abc123&passphrase=secretsecret&latency=2000000"), "abc123");
        assert_eq!(key("streamid=abc123&pbkeylen=16"), "abc123");
        assert_eq!(key("?streamid=#!::r=abc123,m=publish&passphrase=x"), "abc123");
        assert_eq!(key("#!::r=abc123,m=publish&latency=200"), "abc123");
        // OBS cut the value at `&`: what is left still names the event.
        assert_eq!(key("#!::r=live/abc123"), "abc123");
        assert_eq!(parse_stream_id("&passphrase=x"), Err(StreamIdError::Empty));
    }

    #[test]
    fn whole_urls() {
        assert_eq!(key("srt://host.example:9000?streamid=abc123&passphrase=x"), "abc123");
        assert_eq!(key("SRT://host:9000?mode=caller&streamid=%23%21%3A%3Ar%3Dabc123"), "abc123");
        assert_eq!(key("srt://10.0.0.1:9000/live/abc123"), "abc123");
        assert_eq!(parse_stream_id("srt://10.0.0.1:9000"), Err(StreamIdError::Empty));
    }

    #[test]
    fn ambiguous_paths_list_every_candidate() {
        // SRT Live Server's host/app/stream: the token is the last segment there.
        let t = parse_stream_id("uplive.sls.com/live/abc123").unwrap();
        assert_eq!(t.candidates().collect::<Vec<_>>(), vec!["live", "uplive.sls.com", "abc123"]);
        let t = parse_stream_id("abc123").unwrap();
        assert_eq!(t.candidates().collect::<Vec<_>>(), vec!["abc123"]);
    }

    #[test]
    fn empty_and_oversized() {
        assert_eq!(parse_stream_id(""), Err(StreamIdError::Empty));
        assert_eq!(parse_stream_id("  "), Err(StreamIdError::Empty));
        assert_eq!(parse_stream_id("//"), Err(StreamIdError::NoKey));
        assert_eq!(parse_stream_id(&"a".repeat(513)), Err(StreamIdError::TooLong));
    }
}
