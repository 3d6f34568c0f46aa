//! Live events: create/update/delete, the allocate/start/stop/reset actions (long-running,
//! driven by the state machine in `edge_model::state`), and the 2022-11-01 telemetry actions.

use std::net::IpAddr;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_db::{LiveEventRow, OperationKind, OperationRow, StreamEventRow};
use edge_live::LiveSession;
use edge_model::state::{self, LiveEventAction, Transition};
use edge_model::{
    EncodingType, IsoDuration, LiveEventName, LiveEventState, OperationStatus, ProvisioningState, RtspPullMode,
    StreamOption, StreamingProtocol, StretchMode, Timestamp,
};
use serde_json::{Map, Value, json};

use crate::body::{self, Obj};
use crate::error::{ApiError, ApiResult};
use crate::path::Route;
use crate::{Ctx, Shared, db, lro, method_not_allowed, ok_json};

pub(crate) async fn handle(st: &Shared, ctx: &Ctx, m: &Method, route: &Route, body: &[u8]) -> ApiResult<Response> {
    match (m, route) {
        (&Method::GET, Route::LiveEvents) => {
            let rows = db(st, |d| d.live_events()).await?;
            let items: Vec<Value> = rows.iter().map(|r| to_json(st, ctx, r)).collect();
            Ok(ok_json(json!({"value": items, "@odata.count": items.len()})))
        }
        (&Method::GET, Route::LiveEvent(n)) => Ok(ok_json(to_json(st, ctx, &get(st, n).await?))),
        (&Method::PUT, Route::LiveEvent(n)) => put(st, ctx, n, body).await,
        (&Method::PATCH, Route::LiveEvent(n)) => patch(st, ctx, n, body).await,
        (&Method::DELETE, Route::LiveEvent(n)) => delete(st, ctx, n).await,
        (&Method::POST, Route::LiveEventAction(n, a)) => action(st, ctx, n, a, body).await,
        (&Method::GET, Route::LiveEventOperation(id)) => lro::status(st, OperationKind::LiveEvent, id).await,
        (&Method::GET, Route::LiveEventOperationLocation(n, id)) => {
            let key = n.to_ascii_lowercase();
            lro::location(st, ctx, OperationKind::LiveEvent, id, async {
                let row = db(st, move |d| d.live_event(&key)).await?;
                Ok(row.map(|r| to_json(st, ctx, &r)))
            })
            .await
        }
        (_, Route::LiveEvents) => Err(method_not_allowed(m, "the live event collection")),
        (_, Route::LiveEventAction(..)) => Err(method_not_allowed(m, "live event actions (use POST)")),
        _ => Err(method_not_allowed(m, "a live event")),
    }
}

pub(crate) async fn get(st: &Shared, name: &str) -> ApiResult<LiveEventRow> {
    let key = name.to_ascii_lowercase();
    crate::db_read(st, |d| d.live_event(&key))?
        .ok_or_else(|| ApiError::not_found(format!("Live event '{name}' was not found.")))
}

// ---- validation ------------------------------------------------------------------------------

const SRT_TAGS: [(&str, &str); 3] = [
    ("srtPassphrase", "IngestOptions.SrtPassphrase"),
    ("srtLatency", "IngestOptions.SrtLatency"),
    ("srtMaxBW", "IngestOptions.SrtMaxBW"),
];

fn tag<'a>(tags: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

pub(crate) fn access_control(o: &Obj<'_>) -> ApiResult<Value> {
    if !o.present() {
        return Ok(Value::Null);
    }
    let ip = o.obj("ip")?;
    let Some(allow) = ip.array("allow")? else {
        return Ok(json!({"ip": {"allow": []}}));
    };
    let mut out = Vec::new();
    for (i, entry) in allow.iter().enumerate() {
        let e = Obj::root(entry, &format!("{}[{i}]", ip.path_of("allow")))?;
        let address = e.req_str("address")?;
        let addr: IpAddr = address.parse().map_err(|_| {
            ApiError::invalid_parameter(format!("'{}' is not an IP address: '{address}'.", e.path_of("address")))
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = e.i64("subnetPrefixLength")?;
        if let Some(p) = prefix
            && !(0..=max).contains(&p)
        {
            return Err(ApiError::invalid_parameter(format!(
                "'{}' must be between 0 and {max}.",
                e.path_of("subnetPrefixLength")
            )));
        }
        out.push(json!({"name": e.str("name")?.unwrap_or(""), "address": address, "subnetPrefixLength": prefix}));
    }
    Ok(json!({"ip": {"allow": out}}))
}

fn duration_in(o: &Obj<'_>, k: &str, min_s: f64, max_s: f64) -> ApiResult<Option<IsoDuration>> {
    let Some(s) = o.str(k)? else { return Ok(None) };
    if s.is_empty() {
        return Ok(None);
    }
    let d = IsoDuration::parse(s).map_err(|e| ApiError::invalid_parameter(format!("'{}': {e}.", o.path_of(k))))?;
    if d.as_secs_f64() < min_s || d.as_secs_f64() > max_s {
        return Err(ApiError::invalid_parameter(format!(
            "'{}' must be between {min_s} and {max_s} seconds (got {s}).",
            o.path_of(k)
        )));
    }
    Ok(Some(d))
}

/// Access tokens go into ingest URLs, so they are restricted to URL-safe characters.
fn check_token(t: &str) -> ApiResult<()> {
    if t.is_empty() || t.len() > 64 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ApiError::invalid_parameter(
            "'properties.input.accessToken' must be 1 to 64 letters, digits, '-' or '_' (a GUID with or without hyphens is typical).",
        ));
    }
    Ok(())
}

/// A validated live event request: what gets stored.
struct Validated {
    location: String,
    tags: Map<String, Value>,
    protocol: StreamingProtocol,
    encoding_type: EncodingType,
    access_token: String,
    properties: Value,
}

/// Validates a create/replace body into the stored form. `existing` supplies the server-made
/// values (token, preview locator) a replace keeps when the client does not restate them.
fn validate(v: &Value, existing: Option<&LiveEventRow>) -> ApiResult<Validated> {
    let root = Obj::root(v, "")?;
    let location = root
        .str("location")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ApiError::invalid_parameter(
                "'location' is required (any value, e.g. \"West Europe\"; the appliance echoes it).",
            )
        })?
        .to_owned();
    let tags = root.string_map("tags")?;
    let props = root.obj("properties")?;
    if !props.present() {
        return Err(ApiError::invalid_parameter("'properties' is required and must contain 'input'."));
    }
    let input = props.obj("input")?;
    if !input.present() {
        return Err(ApiError::invalid_parameter(
            "'properties.input' is required (at least {\"streamingProtocol\": \"RTMP\"}).",
        ));
    }
    let protocol = StreamingProtocol::parse(input.req_str("streamingProtocol")?)
        .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    if protocol == StreamingProtocol::FragmentedMp4 {
        return Err(ApiError::not_supported(
            "streamingProtocol FragmentedMP4 (Smooth Streaming ingest) is not supported by this appliance; use RTMP, SRT, RTSPPush, RTSPPull or LocalCapture.",
        ));
    }
    let access_token = match input.str("accessToken")? {
        Some(t) => {
            check_token(t)?;
            t.to_owned()
        }
        None => existing.map(|e| e.access_token.clone()).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
    };
    let mut input_out = json!({
        "streamingProtocol": protocol.as_str(),
        "accessToken": access_token,
    });
    // An absent or empty allow list admits every encoder, as RMS does.
    let ac = access_control(&input.obj("accessControl")?)?;
    input_out["accessControl"] = if ac.is_null() { json!({"ip": {"allow": []}}) } else { ac };
    if let Some(d) = duration_in(&input, "keyFrameIntervalDuration", 0.5, 20.0)? {
        input_out["keyFrameIntervalDuration"] = json!(d.to_string());
    }

    // SRT options: `input.*` (RMS REST) or `IngestOptions.*` tags (RMS C# sample); input wins.
    let srt_pass =
        input.str("srtPassphrase")?.map(str::to_owned).or_else(|| tag(&tags, SRT_TAGS[0].1).map(str::to_owned));
    let srt_latency = match input.i64("srtLatency")? {
        Some(l) => Some(l),
        None => tag(&tags, SRT_TAGS[1].1)
            .map(|s| {
                s.parse::<i64>().map_err(|_| {
                    ApiError::invalid_parameter(format!("Tag '{}' must be an integer (milliseconds).", SRT_TAGS[1].1))
                })
            })
            .transpose()?,
    };
    let srt_maxbw = match input.i64("srtMaxBW")? {
        Some(l) => Some(l),
        None => tag(&tags, SRT_TAGS[2].1)
            .map(|s| {
                s.parse::<i64>().map_err(|_| {
                    ApiError::invalid_parameter(format!(
                        "Tag '{}' must be an integer (bytes per second).",
                        SRT_TAGS[2].1
                    ))
                })
            })
            .transpose()?,
    };
    let explicit_srt = SRT_TAGS.iter().any(|(k, _)| input.raw(k).is_some());
    if protocol == StreamingProtocol::Srt {
        if let Some(p) = &srt_pass {
            if !(10..=79).contains(&p.chars().count()) {
                return Err(ApiError::invalid_parameter(
                    "The SRT passphrase must be 10 to 79 characters long (SRT's rule).",
                ));
            }
            // Encoders put the passphrase in a URL and ffmpeg does not URL-decode it.
            if !p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c)) {
                return Err(ApiError::invalid_parameter(
                    "The SRT passphrase may contain only letters, digits, '-', '_', '.' and '~' (encoders put it in a URL unescaped).",
                ));
            }
            input_out["srtPassphrase"] = json!(p);
        }
        if let Some(l) = srt_latency {
            if !(20..=8000).contains(&l) {
                return Err(ApiError::invalid_parameter("The SRT latency must be between 20 and 8000 milliseconds."));
            }
            input_out["srtLatency"] = json!(l);
        }
        if let Some(b) = srt_maxbw {
            if b < -1 {
                return Err(ApiError::invalid_parameter(
                    "srtMaxBW must be -1 (unlimited), 0 (automatic) or a rate in bytes per second.",
                ));
            }
            input_out["srtMaxBW"] = json!(b);
        }
    } else if explicit_srt {
        return Err(ApiError::invalid_parameter(
            "input.srtPassphrase, srtLatency and srtMaxBW apply only to SRT live events.",
        ));
    }

    // RTSP pull: the camera URL and transport, as `input.*` or `IngestOptions.RtspPull*` tags.
    let pull_url = input
        .str("rtspPullUrl")?
        .map(str::to_owned)
        .or_else(|| tag(&tags, "IngestOptions.RtspPullUrl").map(str::to_owned));
    let pull_mode = input
        .str("rtspPullMode")?
        .map(str::to_owned)
        .or_else(|| tag(&tags, "IngestOptions.RtspPullMode").map(str::to_owned));
    if protocol == StreamingProtocol::RtspPull {
        let url = pull_url.ok_or_else(|| {
            ApiError::invalid_parameter("An RTSPPull live event needs the camera's URL: set 'properties.input.rtspPullUrl' or the tag 'IngestOptions.RtspPullUrl' (rtsp://user:password@camera/stream).")
        })?;
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("rtsps://") {
            // The pull client (retina) speaks RTSP over TCP, UDP and HTTP tunnels, not over TLS.
            return Err(ApiError::invalid_parameter(format!(
                "RTSP over TLS (rtsps://) is not supported for camera pulls: use the camera's rtsp:// URL (got '{}').",
                redact_url(&url)
            )));
        }
        if !lower.starts_with("rtsp://") || url.len() < 8 {
            return Err(ApiError::invalid_parameter(format!(
                "The RTSP pull URL must start with rtsp:// (got '{}').",
                redact_url(&url)
            )));
        }
        input_out["rtspPullUrl"] = json!(url);
        let mode = match pull_mode {
            Some(m) => RtspPullMode::parse(&m).map_err(|e| ApiError::invalid_parameter(e.to_string()))?,
            None => RtspPullMode::TcpUdp,
        };
        input_out["rtspPullMode"] = json!(mode.as_str());
    } else if input.raw("rtspPullUrl").is_some() || input.raw("rtspPullMode").is_some() {
        return Err(ApiError::invalid_parameter(
            "input.rtspPullUrl and rtspPullMode apply only to RTSPPull live events.",
        ));
    }

    // Local capture (an rms-edge extension): the V4L2 device, as `input.captureDevice` or the tag
    // `IngestOptions.CaptureDevice`; input wins. The device need not be plugged in at create (nor at
    // start: the event then reports it missing and waits for it).
    let capture = input
        .str("captureDevice")?
        .map(str::to_owned)
        .or_else(|| tag(&tags, "IngestOptions.CaptureDevice").map(str::to_owned));
    if protocol == StreamingProtocol::LocalCapture {
        let dev = capture.ok_or_else(|| {
            ApiError::invalid_parameter("A LocalCapture live event needs a capture device: set 'properties.input.captureDevice' or the tag 'IngestOptions.CaptureDevice' to an id from GET /edge/v1/captureDevices (e.g. usb-046d_HD_Pro_Webcam_C920-video-index0).")
        })?;
        let id = edge_gst::capture::CaptureDeviceId::parse(&dev).map_err(ApiError::invalid_parameter)?;
        input_out["captureDevice"] = json!(id.as_str());
    } else if input.raw("captureDevice").is_some() {
        return Err(ApiError::invalid_parameter(
            "input.captureDevice applies only to LocalCapture live events (set streamingProtocol to LocalCapture).",
        ));
    }

    // Encoding.
    let enc = props.obj("encoding")?;
    let encoding_type = match enc.str("encodingType")? {
        Some(t) => EncodingType::parse(t).map_err(|e| ApiError::invalid_parameter(e.to_string()))?,
        None => EncodingType::None,
    };
    let mut enc_out = json!({"encodingType": encoding_type.as_str()});
    let preset = enc.str("presetName")?;
    if encoding_type.is_passthrough() {
        if let Some(p) = preset.filter(|p| !p.is_empty()) {
            return Err(ApiError::invalid_parameter(format!(
                "'properties.encoding.presetName' ('{p}') applies only to Standard and Premium1080p live events; pass-through events have no preset."
            )));
        }
        if enc.raw("keyFrameInterval").is_some() {
            return Err(ApiError::invalid_parameter(
                "'properties.encoding.keyFrameInterval' applies only to Standard and Premium1080p live events; for pass-through, set the GOP on the encoder (and 'input.keyFrameIntervalDuration').",
            ));
        }
        enc_out["presetName"] = Value::Null;
    } else {
        let preset = preset.filter(|p| !p.is_empty()).unwrap_or(encoding_type.default_preset().unwrap_or(""));
        let ok = match encoding_type {
            EncodingType::Standard => ["Default720p"].iter().any(|p| p.eq_ignore_ascii_case(preset)),
            _ => ["Default1080p"].iter().any(|p| p.eq_ignore_ascii_case(preset)),
        };
        if !ok {
            return Err(ApiError::invalid_parameter(format!(
                "Unknown presetName '{preset}' for {encoding_type}: use {}.",
                encoding_type.default_preset().unwrap_or("")
            )));
        }
        enc_out["presetName"] = json!(encoding_type.default_preset());
        if let Some(d) = duration_in(&enc, "keyFrameInterval", 0.5, 20.0)? {
            enc_out["keyFrameInterval"] = json!(d.to_string());
        }
    }
    if let Some(s) = enc.str("stretchMode")? {
        enc_out["stretchMode"] =
            json!(StretchMode::parse(s).map_err(|e| ApiError::invalid_parameter(e.to_string()))?.as_str());
    }

    // Stream options.
    let mut options = Vec::new();
    if let Some(arr) = props.array("streamOptions")? {
        for o in arr {
            let s = o.as_str().ok_or_else(|| {
                ApiError::invalid_parameter("'properties.streamOptions' must be an array of strings.")
            })?;
            let opt = StreamOption::parse(s).map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
            if !options.contains(&opt) {
                options.push(opt);
            }
        }
    }
    if options.contains(&StreamOption::LowLatency) && options.contains(&StreamOption::LowLatencyV2) {
        return Err(ApiError::invalid_parameter(
            "Choose one of LowLatency and LowLatencyV2 in 'properties.streamOptions'.",
        ));
    }

    // Preview (no preview stage on the appliance; the values are kept and echoed).
    let preview = props.obj("preview")?;
    let mut preview_out = json!({
        "endpoints": [],
        "previewLocator": existing
            .and_then(|e| e.properties.pointer("/preview/previewLocator").cloned())
            .unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string())),
        "streamingPolicyName": Value::Null,
    });
    if let Some(l) = preview.str("previewLocator")? {
        edge_model::parse_guid(l)
            .ok_or_else(|| ApiError::invalid_parameter("'properties.preview.previewLocator' must be a GUID."))?;
        preview_out["previewLocator"] = json!(l);
    }
    if let Some(p) = preview.str("streamingPolicyName")? {
        preview_out["streamingPolicyName"] = json!(p);
    }
    if let Some(a) = preview.str("alternativeMediaId")? {
        preview_out["alternativeMediaId"] = json!(a);
    }
    let pac = access_control(&preview.obj("accessControl")?)?;
    preview_out["accessControl"] = if pac.is_null() { json!({"ip": {"allow": []}}) } else { pac };

    let cross = props.obj("crossSiteAccessPolicies")?;
    let mut properties = json!({
        "description": props.str("description")?.unwrap_or(""),
        "input": input_out,
        "preview": preview_out,
        "encoding": enc_out,
        "transcriptions": props.array("transcriptions")?.cloned().unwrap_or_default(),
        "crossSiteAccessPolicies": {
            "clientAccessPolicy": cross.str("clientAccessPolicy")?,
            "crossDomainPolicy": cross.str("crossDomainPolicy")?,
        },
        "useStaticHostname": props.bool("useStaticHostname")?.unwrap_or(false),
        "streamOptions": options.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
    });
    if let Some(h) = props.str("hostnamePrefix")? {
        properties["hostnamePrefix"] = json!(h);
    }
    Ok(Validated { location, tags, protocol, encoding_type, access_token, properties })
}

/// Fields that cannot change after creation, by JSON pointer.
const CREATE_ONLY: [(&str, &str); 7] = [
    ("/input/streamingProtocol", "properties.input.streamingProtocol"),
    ("/input/accessToken", "properties.input.accessToken"),
    ("/encoding", "properties.encoding"),
    ("/streamOptions", "properties.streamOptions"),
    ("/preview/previewLocator", "properties.preview.previewLocator"),
    ("/preview/streamingPolicyName", "properties.preview.streamingPolicyName"),
    ("/preview/alternativeMediaId", "properties.preview.alternativeMediaId"),
];

fn check_create_only(old: &LiveEventRow, new: &Validated) -> ApiResult<()> {
    for (ptr, name) in CREATE_ONLY {
        if old.properties.pointer(ptr) != new.properties.pointer(ptr) {
            return Err(ApiError::invalid_parameter(format!(
                "'{name}' cannot be changed after the live event is created; delete the live event and create it again."
            )));
        }
    }
    if old.properties.get("useStaticHostname") != new.properties.get("useStaticHostname")
        && !matches!(old.state, LiveEventState::StandBy | LiveEventState::Stopped)
    {
        return Err(ApiError::invalid_parameter(
            "'properties.useStaticHostname' can be changed only while the live event is Stopped or StandBy.",
        ));
    }
    Ok(())
}

/// The stored event as a request body, so a PATCH can be merged into it and revalidated.
fn as_request(ev: &LiveEventRow) -> Value {
    json!({"location": ev.location, "tags": ev.tags, "properties": ev.properties})
}

/// RFC 7396 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                let existing = t.keys().find(|tk| tk.eq_ignore_ascii_case(k)).cloned();
                let key = existing.unwrap_or_else(|| k.clone());
                if v.is_null() {
                    t.remove(&key);
                } else {
                    merge(t.entry(key).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

// ---- responses -----------------------------------------------------------------------------

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Ingest URLs, ready to paste into an encoder: RTMP then RTMPS for RTMP events (the RMS
/// order clients rely on), the SRT URL with its stream id, the RTSP URL with the token.
pub(crate) fn endpoints(st: &Shared, ev: &LiveEventRow) -> Vec<Value> {
    let a = &st.addrs;
    let h = &a.ingest_host;
    let token = &ev.access_token;
    match ev.protocol {
        StreamingProtocol::Rtmp | StreamingProtocol::FragmentedMp4 => vec![
            json!({"protocol": "RTMP", "url": format!("rtmp://{h}:{}/live", a.rtmp_port)}),
            json!({"protocol": "RTMPS", "url": format!("rtmps://{h}:{}/live", a.rtmps_port)}),
        ],
        StreamingProtocol::Srt => {
            // Ready to paste into ffmpeg/OBS: the passphrase alphabet needs no escaping (ffmpeg
            // does not decode it), `pbkeylen` is always stated with a passphrase (libsrt callers
            // that omit it send key material srt-protocol 0.4.4's handshake cannot take), and ffmpeg/OBS read `latency` in
            // microseconds (srt-live-transmit and GStreamer read milliseconds).
            let mut url = format!("srt://{h}:{}?streamid={token}", a.srt_port);
            let input = &ev.properties["input"];
            if let Some(p) = input["srtPassphrase"].as_str() {
                url.push_str(&format!("&passphrase={p}&pbkeylen=16"));
            }
            if let Some(l) = input["srtLatency"].as_i64() {
                url.push_str(&format!("&latency={}", l * 1000));
            }
            vec![json!({"protocol": "SRT", "url": url})]
        }
        StreamingProtocol::RtspPush => {
            vec![json!({"protocol": "RTSP", "url": format!("rtsp://{h}:{}/live/{token}", a.rtsp_port)})]
        }
        StreamingProtocol::RtspPull => {
            let url = ev.properties["input"]["rtspPullUrl"].as_str().unwrap_or_default();
            vec![json!({"protocol": "RTSP", "url": redact_url(url)})]
        }
        // Nothing to connect to: the appliance captures from its own device.
        StreamingProtocol::LocalCapture => Vec::new(),
    }
}

pub(crate) fn to_json(st: &Shared, ctx: &Ctx, ev: &LiveEventRow) -> Value {
    let mut props = ev.properties.clone();
    props["input"]["endpoints"] = json!(endpoints(st, ev));
    props["input"]["timedMetadataEndpoints"] = json!([]);
    props["provisioningState"] = json!(ev.provisioning.as_str());
    props["resourceState"] = json!(ev.state.as_str());
    props["created"] = json!(ev.created.to_string());
    props["lastModified"] = json!(ev.last_modified.to_string());
    json!({
        "name": ev.name,
        "id": format!("{}/liveevents/{}", ctx.prefix, ev.name),
        "type": "Microsoft.Media/mediaservices/liveevents",
        "location": ev.location,
        "tags": ev.tags,
        "systemData": crate::system_data(&ev.created, &ev.last_modified),
        "properties": props,
    })
}

// ---- handlers ------------------------------------------------------------------------------

fn op(ev_name: &str, action: &str) -> OperationRow {
    OperationRow::new(
        OperationKind::LiveEvent,
        format!("le:{}", ev_name.to_ascii_lowercase()),
        ev_name.to_owned(),
        action,
    )
}

async fn put(st: &Shared, ctx: &Ctx, name: &str, body: &[u8]) -> ApiResult<Response> {
    let name = LiveEventName::parse(name).map_err(|e| ApiError::invalid_name(e.0))?;
    let v = body::parse_object(body)?;
    let key = name.key();
    let existing = db(st, move |d| d.live_event(&key)).await?;
    let auto_start = match ctx.query("autoStart") {
        None => false,
        Some(s) if s.eq_ignore_ascii_case("true") => true,
        Some(s) if s.eq_ignore_ascii_case("false") => false,
        Some(s) => {
            return Err(ApiError::invalid_parameter(format!("autoStart must be true or false, got '{s}'.")));
        }
    };
    if let Some(old) = existing {
        // PUT on an existing event replaces its editable properties (ARM create-or-update).
        let new = validate(&v, Some(&old))?;
        check_create_only(&old, &new)?;
        let row = LiveEventRow {
            location: new.location,
            tags: Value::Object(new.tags),
            properties: new.properties,
            last_modified: Timestamp::now(),
            ..old
        };
        let r2 = row.clone();
        db(st, move |d| d.live_event_update_doc(&r2)).await?;
        return Ok(ok_json(to_json(st, ctx, &row)));
    }
    let val = validate(&v, None)?;
    let now = Timestamp::now();
    let row = LiveEventRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.as_str().to_owned(),
        location: val.location,
        tags: Value::Object(val.tags),
        protocol: val.protocol,
        encoding_type: val.encoding_type,
        access_token: val.access_token,
        state: LiveEventState::Stopped,
        provisioning: if auto_start { ProvisioningState::InProgress } else { ProvisioningState::Succeeded },
        properties: val.properties,
        created: now,
        last_modified: now,
    };
    let mut operation = op(&row.name, if auto_start { "create+start" } else { "create" });
    if !auto_start {
        // Nothing is left to do once the row is in: the operation is stored as finished, so a
        // client that starts the event right after the 201 (without polling) is not refused.
        operation.status = OperationStatus::Succeeded;
        operation.finished = Some(now);
    }
    let (r2, o2) = (row.clone(), operation.clone());
    db(st, move |d| d.live_event_insert(&r2, Some(&o2))).await?;
    tracing::info!(event = %row.name, protocol = %row.protocol, auto_start, "live event created");
    let body = to_json(st, ctx, &row);
    let st2 = st.clone();
    let key = name.key();
    if auto_start {
        lro::spawn(st, operation.id.clone(), async move { run_start(&st2, &key).await });
    }
    Ok(lro::accepted(ctx, &operation, StatusCode::CREATED, Some(body)))
}

async fn patch(st: &Shared, ctx: &Ctx, name: &str, body: &[u8]) -> ApiResult<Response> {
    let v = body::parse_object(body)?;
    let old = get(st, name).await?;
    let mut merged = as_request(&old);
    merge(&mut merged, &v);
    let new = validate(&merged, Some(&old))?;
    check_create_only(&old, &new)?;
    state::transition(old.state, LiveEventAction::Update).map_err(|e| ApiError::conflict(e.0))?;
    let operation = op(&old.name, "update");
    let row = LiveEventRow {
        location: new.location,
        tags: Value::Object(new.tags),
        properties: new.properties,
        last_modified: Timestamp::now(),
        ..old
    };
    let (r2, o2, key) = (row.clone(), operation.clone(), row.name.to_ascii_lowercase());
    db(st, move |d| {
        d.operation_insert(&o2)?;
        d.live_event_update_doc(&r2)
    })
    .await?;
    let st2 = st.clone();
    lro::spawn(st, operation.id.clone(), async move {
        // The update is stored; the operation completes once the event is back at rest.
        let k = key.clone();
        let ev = db(&st2, move |d| d.live_event(&k)).await?;
        if let Some(ev) = ev {
            db(&st2, move |d| d.live_event_set_state(&key, ev.state, ProvisioningState::Succeeded)).await?;
        }
        Ok(())
    });
    Ok(lro::accepted(ctx, &operation, StatusCode::ACCEPTED, Some(to_json(st, ctx, &row))))
}

async fn delete(st: &Shared, ctx: &Ctx, name: &str) -> ApiResult<Response> {
    let key = name.to_ascii_lowercase();
    let k2 = key.clone();
    let Some(ev) = db(st, move |d| d.live_event(&k2)).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let Transition::Run { during, .. } =
        state::transition(ev.state, LiveEventAction::Delete).map_err(|e| ApiError::conflict(e.0))?
    else {
        unreachable!("delete is never a no-op")
    };
    let operation = op(&ev.name, "delete");
    let (o2, from) = (operation.clone(), ev.state);
    db(st, move |d| d.live_event_begin_op(&key, from, during, &o2)).await?;
    let st2 = st.clone();
    let (id, name) = (ev.id.clone(), ev.name.clone());
    lro::spawn(st, operation.id.clone(), async move {
        st2.live.stop(&id).await;
        let k = name.to_ascii_lowercase();
        db(&st2, move |d| d.live_event_delete(&k)).await?;
        tracing::info!(event = %name, "live event deleted");
        Ok(())
    });
    Ok(lro::accepted(ctx, &operation, StatusCode::ACCEPTED, None))
}

async fn action(st: &Shared, ctx: &Ctx, name: &str, action: &str, body: &[u8]) -> ApiResult<Response> {
    let telemetry = ["getStatus", "getStreamEvents", "getTrackIngestHeartbeats"];
    if let Some(t) = telemetry.iter().find(|t| t.eq_ignore_ascii_case(action)) {
        let ev = get(st, name).await?;
        return telemetry_action(st, &ev, t).await;
    }
    let act = match LiveEventAction::parse(action) {
        Some(
            a @ (LiveEventAction::Allocate | LiveEventAction::Start | LiveEventAction::Stop | LiveEventAction::Reset),
        ) => a,
        _ => {
            return Err(ApiError::not_found(format!(
                "Unknown live event action '{action}': use allocate, start, stop, reset, getStatus, getStreamEvents or getTrackIngestHeartbeats."
            )));
        }
    };
    // stop: `{"removeOutputsOnStop": bool}`, optional. RMS deletes the live outputs on stop
    // (its quickstart sends no body and expects that), so absent means true.
    let remove_outputs = if act == LiveEventAction::Stop {
        let v = body::parse_optional_object(body)?;
        Obj::root(&v, "")?.bool("removeOutputsOnStop")?.unwrap_or(true)
    } else {
        true
    };
    let operation = begin_action(st, name, act, remove_outputs).await?;
    Ok(lro::accepted(ctx, &operation, StatusCode::ACCEPTED, None))
}

/// Starts a long-running action on a live event (validated by the state machine, one at a
/// time) and returns its operation; the work runs in the background.
pub(crate) fn begin_action<'a>(
    st: &'a Shared,
    name: &'a str,
    act: LiveEventAction,
    remove_outputs: bool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<OperationRow>> + Send + 'a>> {
    // Boxed: start arms the auto-stop timer, which calls back into this function.
    Box::pin(async move {
        let ev = get(st, name).await?;
        let transition = state::transition(ev.state, act).map_err(|e| ApiError::conflict(e.0))?;
        let operation = op(
            &ev.name,
            if act == LiveEventAction::Stop && !remove_outputs { "stop:keepOutputs" } else { act.as_str() },
        );
        let key = ev.name.to_ascii_lowercase();
        match transition {
            Transition::NoOp => {
                let mut done = operation.clone();
                done.status = edge_model::OperationStatus::Succeeded;
                done.finished = Some(Timestamp::now());
                db(st, move |d| d.operation_insert(&done)).await?;
            }
            Transition::Run { during, .. } => {
                let (o2, k2, from) = (operation.clone(), key.clone(), ev.state);
                db(st, move |d| d.live_event_begin_op(&k2, from, during, &o2)).await?;
                let st2 = st.clone();
                lro::spawn(st, operation.id.clone(), async move {
                    match act {
                        LiveEventAction::Start => run_start(&st2, &key).await,
                        LiveEventAction::Stop => run_stop(&st2, &key, remove_outputs).await,
                        LiveEventAction::Reset => {
                            run_stop(&st2, &key, true).await?;
                            run_start(&st2, &key).await
                        }
                        LiveEventAction::Allocate => {
                            db(&st2, move |d| {
                                d.live_event_set_state(&key, LiveEventState::StandBy, ProvisioningState::Succeeded)
                            })
                            .await
                        }
                        _ => unreachable!(),
                    }
                });
            }
        }
        Ok(operation)
    })
}

/// Stops the event once it has run for the configured maximum (RMS: 12 h), unless it was
/// stopped (or restarted: `started` no longer matches) meanwhile. `remaining` accounts for
/// time already run before an appliance restart.
pub(crate) fn arm_auto_stop(st: &Shared, ev: &LiveEventRow, started: Timestamp, remaining: std::time::Duration) {
    let st = st.clone();
    let (id, name) = (ev.id.clone(), ev.name.clone());
    tokio::spawn(async move {
        tokio::time::sleep(remaining).await;
        if st.live.started(&id) != Some(started) {
            return;
        }
        tracing::warn!(event = %name, max = ?st.event_max_duration, "the live event reached its maximum duration: stopping it (the recording is kept)");
        let row = StreamEventRow {
            time: Timestamp::now(),
            event_type: "StreamEvent/EndIngest".into(),
            level: "Warning".into(),
            data: json!({"resultCode": "MPE_INGEST_MAX_DURATION", "resultMessage": format!("The live event ran for its maximum of {} s and was stopped.", st.event_max_duration.as_secs())}),
        };
        let id2 = id.clone();
        let _ = db(&st, move |d| d.stream_event_append(&id2, &row, 1000)).await;
        if let Err(e) = begin_action(&st, &name, LiveEventAction::Stop, true).await {
            tracing::error!(event = %name, "automatic stop failed: {}", e.message);
        }
    });
}

/// What ingest needs to know about an event.
pub(crate) fn session_of(ev: &LiveEventRow) -> LiveSession {
    let input = &ev.properties["input"];
    let key_frame_interval =
        input["keyFrameIntervalDuration"].as_str().and_then(|s| IsoDuration::parse(s).ok()).map(|d| d.0);
    let allow = input["accessControl"]["ip"]["allow"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let ip: std::net::IpAddr = e["address"].as_str()?.parse().ok()?;
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let len = e["subnetPrefixLength"].as_i64().unwrap_or(max).clamp(0, max) as u8;
                    Some((ip, len))
                })
                .collect()
        })
        .unwrap_or_default();
    LiveSession {
        event_id: ev.id.clone(),
        event_name: ev.name.clone(),
        access_token: ev.access_token.clone(),
        protocol: ev.protocol,
        started: Timestamp::now(),
        key_frame_interval,
        allow,
        srt_passphrase: input["srtPassphrase"].as_str().map(str::to_owned),
        srt_latency: input["srtLatency"].as_u64().map(std::time::Duration::from_millis),
        rtsp_pull: (ev.protocol == StreamingProtocol::RtspPull)
            .then(|| input["rtspPullUrl"].as_str().map(str::to_owned))
            .flatten()
            .map(|url| {
                let mode = input["rtspPullMode"].as_str().and_then(|m| RtspPullMode::parse(m).ok());
                (url, mode.unwrap_or(RtspPullMode::TcpUdp))
            }),
        capture_device: (ev.protocol == StreamingProtocol::LocalCapture)
            .then(|| input["captureDevice"].as_str().map(str::to_owned))
            .flatten(),
        encoding: ev.properties["encoding"]["encodingType"]
            .as_str()
            .and_then(|t| EncodingType::parse(t).ok())
            .unwrap_or(EncodingType::None),
        encoding_key_frame_interval: ev.properties["encoding"]["keyFrameInterval"]
            .as_str()
            .and_then(|s| IsoDuration::parse(s).ok())
            .map(|d| d.0),
    }
}

/// Makes the event Running: registered with the live registry, so its stream key is accepted
/// at ingest, then recorded. On failure it returns to Stopped.
pub(crate) async fn run_start(st: &Shared, key: &str) -> ApiResult<()> {
    let k = key.to_owned();
    let ev = db(st, move |d| d.live_event(&k))
        .await?
        .ok_or_else(|| ApiError::not_found("The live event was deleted while starting."))?;
    st.live.start(session_of(&ev)).map_err(|e| ApiError::internal("starting the live pipeline", e))?;
    let k = key.to_owned();
    if let Err(e) =
        db(st, move |d| d.live_event_set_state(&k, LiveEventState::Running, ProvisioningState::Succeeded)).await
    {
        st.live.stop(&ev.id).await;
        return Err(e);
    }
    if let Some(started) = st.live.started(&ev.id) {
        arm_auto_stop(st, &ev, started, st.event_max_duration);
    }
    tracing::info!(event = %ev.name, protocol = %ev.protocol, "live event running: waiting for the encoder");
    Ok(())
}

/// Stops ingest for the event, deletes its live outputs if asked (their assets keep the
/// recording), and records it Stopped.
pub(crate) async fn run_stop(st: &Shared, key: &str, remove_outputs: bool) -> ApiResult<()> {
    let k = key.to_owned();
    let ev = db(st, move |d| d.live_event(&k))
        .await?
        .ok_or_else(|| ApiError::not_found("The live event was deleted while stopping."))?;
    // The pipeline finishes first: the open segments are recorded before outputs go away.
    st.live.stop(&ev.id).await;
    // Their recordings ended: queued for archive sync once the event is stopped.
    let ev_id = ev.id.clone();
    let recorded = db(st, move |d| d.event_output_assets(&ev_id)).await.unwrap_or_default();
    if remove_outputs {
        let k = key.to_owned();
        let outs = db(st, move |d| d.live_outputs(&k)).await?;
        for o in outs {
            let id = o.id.clone();
            db(st, move |d| d.live_output_delete(&id)).await?;
            tracing::info!(event = %ev.name, output = %o.name, asset = %o.asset_name, "live output removed on stop; the asset keeps the recording");
        }
    }
    let k = key.to_owned();
    db(st, move |d| d.live_event_set_state(&k, LiveEventState::Stopped, ProvisioningState::Succeeded)).await?;
    tracing::info!(event = %ev.name, "live event stopped");
    crate::sync_queue::enqueue(st, recorded.into_iter().map(|(asset, _)| asset).collect()).await;
    Ok(())
}

fn ingestion_json(i: &edge_live::Ingestion) -> Value {
    // `begin`/`end` stay null until the event has ingested (and ended an ingest).
    json!({
        "streamName": i.stream_name,
        "begin": i.begin.map(|t| t.to_string()),
        "end": i.end.map(|t| t.to_string()),
        "endReason": i.end_reason,
        "ingestInterruptions": i.interruptions.iter().map(|x| json!({
            "begin": x.begin.to_string(),
            "end": x.end.map(|t| t.to_string()),
            "duration": x.end.map(|e| {
                let ns = (e.unix_nanos() - x.begin.unix_nanos()).max(0) as u64;
                IsoDuration(std::time::Duration::from_nanos(ns)).to_string()
            }),
            "reason": x.reason,
        })).collect::<Vec<_>>(),
    })
}

/// The encoder link's packet counters (SRT), an rms-edge extension AMS clients ignore.
fn transport_json(t: &edge_live::TransportStatus) -> Value {
    json!({
        "protocol": t.protocol,
        "packetsReceived": t.packets_received,
        "packetsLost": t.packets_lost,
        "packetsRetransmitted": t.packets_retransmitted,
        "packetsDropped": t.packets_dropped,
        "decryptErrors": t.decrypt_errors,
        "rttMs": (t.rtt_ms * 10.0).round() / 10.0,
        "latencyMs": t.latency_ms,
    })
}

async fn telemetry_action(st: &Shared, ev: &LiveEventRow, which: &str) -> ApiResult<Response> {
    match which {
        "getStatus" => {
            let s = st.live.status(&ev.id);
            Ok(ok_json(json!({"value": [{
                "state": s.state,
                "healthStatus": s.health,
                "healthDescriptions": s.descriptions,
                "lastUpdatedTime": s.last_updated.to_string(),
                "ingestion": ingestion_json(&s.ingestion),
                "transcoding": s.transcoding,
                "transport": s.transport.as_ref().map(transport_json),
                // An rms-edge extension: the video as packaged, whatever the protocol.
                "videoInput": s.video.as_ref().map(|v| json!({
                    "codec": v.codec,
                    "width": v.width,
                    "height": v.height,
                    "frameRate": v.frame_rate,
                    "keyFrameIntervalSeconds": v.key_frame_interval.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
                    "frames": v.frames,
                })),
                "trackStatus": s.tracks.iter().map(|t| json!({
                    "trackId": t.track_id,
                    "expectedBitrate": t.expected_bitrate,
                    "incomingBitrate": t.incoming_bitrate,
                    "ingestDrift": t.ingest_drift,
                    "requestReceived": t.requests_received,
                    "requestSucceeded": t.requests_succeeded,
                })).collect::<Vec<_>>(),
            }]})))
        }
        "getStreamEvents" => {
            let id = ev.id.clone();
            let rows = db(st, move |d| d.stream_events(&id, 500)).await?;
            let value: Vec<Value> = rows
                .into_iter()
                .map(|r| json!({"eventType": r.event_type, "eventTime": r.time.to_string(), "eventLevel": r.level, "data": r.data}))
                .collect();
            Ok(ok_json(json!({"value": value})))
        }
        _ => {
            let s = st.live.status(&ev.id);
            let now = Timestamp::now().to_string();
            let value: Vec<Value> = s
                .tracks
                .iter()
                .map(|t| {
                    json!({
                        "eventType": "TrackEvent/IngestHeartbeat",
                        "eventTime": now,
                        "data": {
                            "trackName": t.track_id,
                            "trackType": t.track_id,
                            "bitrate": t.expected_bitrate,
                            "incomingBitrate": t.incoming_bitrate,
                            "lastTimestamp": t.last_timestamp.map(|x| x.to_string()).unwrap_or_default(),
                            "timescale": t.timescale.to_string(),
                            "overlapCount": 0,
                            "discontinuityCount": t.discontinuities,
                            "nonincreasingCount": 0,
                            "unexpectedBitrate": t.incoming_bitrate.is_some_and(|b| t.expected_bitrate > 0 && (b as f64) < 0.5 * t.expected_bitrate as f64),
                            "state": "Running",
                            "healthy": s.health != "Poor",
                            "lastFragmentArrivalTime": s.last_updated.to_string(),
                            "ingestDriftValue": t.ingest_drift,
                            "transcriptionState": "",
                            "transcriptionLanguage": "",
                            // The connection's counters (SRT), the same on every track's heartbeat.
                            "transport": s.transport.as_ref().map(transport_json),
                        }
                    })
                })
                .collect();
            Ok(ok_json(json!({"value": value})))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({"location": "West Europe", "properties": {"input": {"streamingProtocol": "rtmp"}}})
    }

    #[test]
    fn minimal_create_is_normalized() {
        let v = validate(&base(), None).unwrap();
        assert_eq!(v.protocol, StreamingProtocol::Rtmp);
        assert_eq!(v.properties["input"]["streamingProtocol"], "RTMP");
        assert_eq!(v.properties["encoding"]["encodingType"], "None");
        assert_eq!(v.access_token.len(), 32);
        assert_eq!(v.properties["streamOptions"], json!([]));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"properties": {"input": {"streamingProtocol": "RTMP"}}}), "location"),
            (json!({"location": "x"}), "properties"),
            (json!({"location": "x", "properties": {}}), "properties.input"),
            (json!({"location": "x", "properties": {"input": {"streamingProtocol": "WebRTC"}}}), "streamingProtocol"),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "FragmentedMP4"}}}),
                "not supported",
            ),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "RTMP"}, "encoding": {"encodingType": "Ultra"}}}),
                "encodingType",
            ),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "RTMP", "keyFrameIntervalDuration": "PT30S"}}}),
                "keyFrameIntervalDuration",
            ),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "RTMP", "accessControl": {"ip": {"allow": [{"address": "10.0.0.300"}]}}}}}),
                "address",
            ),
            (json!({"location": "x", "properties": {"input": {"streamingProtocol": "RTSPPull"}}}), "rtspPullUrl"),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "RTSPPull", "rtspPullUrl": "rtsps://u:secret@cam/s"}}}),
                "not supported for camera pulls: use the camera's rtsp:// URL (got 'rtsps://cam/s')",
            ),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "RTSPPull", "rtspPullUrl": "http://cam/s"}}}),
                "must start with rtsp://",
            ),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "SRT", "srtPassphrase": "short"}}}),
                "passphrase",
            ),
            (
                json!({"location": "x", "properties": {"input": {"streamingProtocol": "RTMP"}, "encoding": {"encodingType": "PassthroughStandard", "keyFrameInterval": "PT2S"}}}),
                "keyFrameInterval",
            ),
        ];
        for (body, needle) in cases {
            let e = validate(&body, None).err().unwrap_or_else(|| panic!("accepted {body}"));
            assert!(e.message.contains(needle), "{body}: {}", e.message);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn srt_options_from_tags_and_enum_echo() {
        let v = validate(
            &json!({"location": "x", "tags": {"IngestOptions.SrtPassphrase": "0123456789ab", "IngestOptions.SrtLatency": "200"},
                    "properties": {"input": {"streamingProtocol": "srt"}, "encoding": {"encodingType": "premium1080P"}}}),
            None,
        )
        .unwrap();
        assert_eq!(v.properties["input"]["srtPassphrase"], "0123456789ab");
        assert_eq!(v.properties["input"]["srtLatency"], 200);
        assert_eq!(v.properties["encoding"]["encodingType"], "Premium1080p");
        assert_eq!(v.properties["encoding"]["presetName"], "Default1080p");
    }

    #[test]
    fn local_capture_input() {
        // From input.captureDevice (a full by-id path is reduced to the id), or from the tag.
        let v = validate(
            &json!({"location": "x", "properties": {"input": {"streamingProtocol": "localcapture", "captureDevice": "/dev/v4l/by-id/usb-046d_C920_A1B2-video-index0"}}}),
            None,
        )
        .unwrap();
        assert_eq!(v.protocol, StreamingProtocol::LocalCapture);
        assert_eq!(v.properties["input"]["streamingProtocol"], "LocalCapture");
        assert_eq!(v.properties["input"]["captureDevice"], "usb-046d_C920_A1B2-video-index0");
        let v = validate(
            &json!({"location": "x", "tags": {"IngestOptions.CaptureDevice": "video0"},
                    "properties": {"input": {"streamingProtocol": "LocalCapture"}, "encoding": {"encodingType": "Standard"}}}),
            None,
        )
        .unwrap();
        assert_eq!(v.properties["input"]["captureDevice"], "video0");
        let cases = [
            (json!({"streamingProtocol": "LocalCapture"}), "IngestOptions.CaptureDevice"),
            (json!({"streamingProtocol": "LocalCapture", "captureDevice": "../../etc/passwd"}), "captureDevices"),
            (json!({"streamingProtocol": "LocalCapture", "captureDevice": "/dev/sda"}), "not a capture device id"),
            (json!({"streamingProtocol": "RTMP", "captureDevice": "video0"}), "only to LocalCapture"),
            (json!({"streamingProtocol": "V4L2", "captureDevice": "video0"}), "streamingProtocol"),
        ];
        for (input, needle) in cases {
            let body = json!({"location": "x", "properties": {"input": input}});
            let e = validate(&body, None).err().unwrap_or_else(|| panic!("accepted {body}"));
            assert!(e.message.contains(needle), "{body}: {}", e.message);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn merge_patch() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge(&mut t, &json!({"A": {"b": null, "e": 4}, "d": 5}));
        assert_eq!(t, json!({"a": {"c": 2, "e": 4}, "d": 5}));
    }

    #[test]
    fn credentials_never_echo_in_endpoints() {
        assert_eq!(redact_url("rtsp://u:p@cam/x"), "rtsp://cam/x");
        assert_eq!(redact_url("rtsp://cam/x"), "rtsp://cam/x");
    }
}
