//! The ready-to-paste encoder URL for an event.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986 unreserved characters stay as they are.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `srt://host:port?streamid=<token>[&passphrase=..&pbkeylen=..][&latency=..]`.
///
/// The passphrase goes in as it is: ffmpeg 5.1 (and OBS through it) URL-decodes the stream
/// id but not the passphrase, so a passphrase that needs escaping cannot be carried in a URL
/// for them at all; [`validate_passphrase`] keeps passphrases to characters that need none.
/// `pbkeylen` is always given with a passphrase: without it libsrt announces no key length
/// while sending key material, which the handshake code only copes with at encrypted events.
///
/// The stream id is the bare token: it survives OBS (which ends the value at the first `&`)
/// and every encoder's URL parser. `latency` is in **microseconds**, as ffmpeg and OBS (both
/// through ffmpeg's libsrt protocol) read it; GStreamer's `srtsink uri=` reads milliseconds
/// and libsrt's own URI syntax (`srt-live-transmit`) milliseconds too, so give those
/// `latency_ms` by hand.
pub fn publish_url(
    host: &str,
    port: u16,
    token: &str,
    passphrase: Option<&str>,
    key_length: Option<u8>,
    latency: Option<Duration>,
) -> String {
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
    let mut url = format!("srt://{host}:{port}?streamid={}", utf8_percent_encode(token, VALUE));
    if let Some(p) = passphrase {
        url.push_str(&format!("&passphrase={}", utf8_percent_encode(p, VALUE)));
        debug_assert!(validate_passphrase(p).is_ok(), "escaped passphrases do not survive ffmpeg");
        url.push_str(&format!("&pbkeylen={}", key_length.unwrap_or(16)));
    }
    if let Some(l) = latency {
        url.push_str(&format!("&latency={}", l.as_micros()));
    }
    url
}

/// Whether a passphrase is usable: SRT needs 10 to 79 characters, and encoder URLs need
/// characters that are not escaped (ASCII letters, digits, `-`, `_`, `.`, `~`).
pub fn validate_passphrase(p: &str) -> Result<(), String> {
    if !(10..=79).contains(&p.len()) {
        return Err(format!("an SRT passphrase has 10 to 79 characters, not {}", p.len()));
    }
    if let Some(c) = p.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.~".contains(*c))) {
        return Err(format!("{c:?} cannot be carried in an encoder's SRT URL; use letters, digits, - _ . ~"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_to_paste_forms() {
        assert_eq!(publish_url("box.local", 9000, "abc123", None, None, None), "srt://box.local:9000?streamid=abc123");
        assert_eq!(
            publish_url("10.0.0.5", 9000, "abc123", Some("pass.word-1_X~"), Some(32), Some(Duration::from_millis(500))),
            "srt://10.0.0.5:9000?streamid=abc123&passphrase=pass.word-1_X~&pbkeylen=32&latency=500000"
        );
        assert_eq!(publish_url("::1", 9000, "k", None, None, None), "srt://[::1]:9000?streamid=k");
        // What the URL carries parses back to the token.
        let url = publish_url("h", 1, "abc-123_X", Some("0123456789"), None, None);
        assert_eq!(crate::parse_stream_id(&url).unwrap().key, "abc-123_X");
    }

    #[test]
    fn passphrases_that_survive_encoder_urls() {
        assert!(validate_passphrase("correct-horse_battery.1~").is_ok());
        assert!(validate_passphrase("short").is_err());
        assert!(validate_passphrase(&"x".repeat(80)).is_err());
        assert!(validate_passphrase("pass word 123").is_err());
        assert!(validate_passphrase("pass&word=123").is_err());
    }
}
