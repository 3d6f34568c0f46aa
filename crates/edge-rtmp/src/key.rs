//! Stream-key extraction from the RTMP application name and publish name.
//!
//! Encoders split one URL differently: OBS with "server + key" sends app `live` and name
//! `<key>`; OBS with the whole URL in the server field and an empty key sends app
//! `live/<key>` and an empty name; the AMS form `/live/<key>/<streamName>` arrives as app
//! `live` + name `<key>/<streamName>` (librtmp) or app `live/<key>` + name `<streamName>`
//! (ffmpeg). Joining both into one path and reading it as `<app>/<key>[/<streamName>]`
//! covers all of them.

/// The parts of a publish target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishTarget {
    /// The RTMP application (`live`).
    pub app: String,
    /// The stream key (the live event's access token).
    pub key: String,
    /// The AMS stream name after the key, if any.
    pub stream_name: Option<String>,
}

/// Extracts the application, stream key and optional stream name from what the client sent in
/// `connect` (app) and `publish` (name). Query strings (`key?foo=bar`) and empty path segments
/// are dropped. Returns `None` when there is no application or no key.
pub fn extract_stream_key(app: &str, publish_name: &str) -> Option<PublishTarget> {
    let mut segments = strip_query(app)
        .split('/')
        .chain(strip_query(publish_name).split('/'))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let app = segments.next()?.to_string();
    let key = segments.next()?.to_string();
    let rest: Vec<&str> = segments.collect();
    let stream_name = (!rest.is_empty()).then(|| rest.join("/"));
    Some(PublishTarget { app, key, stream_name })
}

fn strip_query(s: &str) -> &str {
    s.split_once('?').map_or(s, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(app: &str, key: &str, name: Option<&str>) -> Option<PublishTarget> {
        Some(PublishTarget { app: app.into(), key: key.into(), stream_name: name.map(Into::into) })
    }

    #[test]
    fn server_plus_key() {
        assert_eq!(extract_stream_key("live", "abc123"), t("live", "abc123", None));
    }

    #[test]
    fn full_url_with_empty_key_field() {
        assert_eq!(extract_stream_key("live/abc123", ""), t("live", "abc123", None));
        // librtmp keeps a trailing slash in the app when the URL had one.
        assert_eq!(extract_stream_key("live/abc123/", ""), t("live", "abc123", None));
    }

    #[test]
    fn ams_form_split_either_way() {
        let want = t("live", "abc123", Some("cam1"));
        assert_eq!(extract_stream_key("live", "abc123/cam1"), want);
        assert_eq!(extract_stream_key("live/abc123", "cam1"), want);
        assert_eq!(extract_stream_key("/live/", "/abc123/cam1/"), want);
    }

    #[test]
    fn query_strings_are_dropped() {
        assert_eq!(extract_stream_key("live", "abc123?foo=bar&x=1"), t("live", "abc123", None));
        assert_eq!(extract_stream_key("live?vhost=a", "abc123"), t("live", "abc123", None));
        assert_eq!(extract_stream_key("live/abc123?foo=bar", ""), t("live", "abc123", None));
        assert_eq!(extract_stream_key("live", "abc123/cam1?x=y"), t("live", "abc123", Some("cam1")));
    }

    #[test]
    fn deeper_stream_names_are_kept_whole() {
        assert_eq!(extract_stream_key("live/abc123", "a/b"), t("live", "abc123", Some("a/b")));
    }

    #[test]
    fn missing_parts() {
        assert_eq!(extract_stream_key("live", ""), None);
        assert_eq!(extract_stream_key("live", "?foo=bar"), None);
        assert_eq!(extract_stream_key("", ""), None);
        assert_eq!(extract_stream_key("/", "//"), None);
        // A key alone is not enough: the application is the first segment.
        assert_eq!(extract_stream_key("", "abc123"), None);
    }
}
