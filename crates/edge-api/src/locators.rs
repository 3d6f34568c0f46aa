//! Streaming locators (immutable publications of an asset, whose id is the first segment of
//! every playback URL) and streaming policies (the six predefined ones plus user-created
//! clear-streaming ones).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_db::{DocRow, LocatorRow};
use edge_model::{ResourceName, Timestamp};
use serde_json::{Value, json};

use crate::body::{self, Obj};
use crate::error::{ApiError, ApiResult};
use crate::path::Route;
use crate::{Ctx, Page, Shared, assets, db, json_status, method_not_allowed, ok_json};

/// AMS's "no end" locator end time.
const END_OF_TIME: &str = "9999-12-31T23:59:59.9999999Z";

#[derive(Debug, Clone, Copy)]
struct Protocols {
    download: bool,
    dash: bool,
    hls: bool,
    smooth: bool,
}

/// The predefined policies, with whether the appliance can serve them (clear only).
const PREDEFINED: [(&str, Option<Protocols>); 6] = [
    ("Predefined_DownloadOnly", Some(Protocols { download: true, dash: false, hls: false, smooth: false })),
    ("Predefined_ClearStreamingOnly", Some(Protocols { download: false, dash: true, hls: true, smooth: true })),
    ("Predefined_DownloadAndClearStreaming", Some(Protocols { download: true, dash: true, hls: true, smooth: true })),
    ("Predefined_ClearKey", None),
    ("Predefined_MultiDrmCencStreaming", None),
    ("Predefined_MultiDrmStreaming", None),
];

fn protocols_json(p: Protocols) -> Value {
    json!({"download": p.download, "dash": p.dash, "hls": p.hls, "smoothStreaming": p.smooth})
}

fn predefined(name: &str) -> Option<(&'static str, Option<Protocols>)> {
    PREDEFINED.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).copied()
}

fn predefined_json(ctx: &Ctx, name: &str, p: Option<Protocols>) -> Value {
    let props = match p {
        Some(p) => {
            json!({"created": "2024-01-01T00:00:00.0000000Z", "noEncryption": {"enabledProtocols": protocols_json(p)}})
        }
        None => json!({
            "created": "2024-01-01T00:00:00.0000000Z",
            "commonEncryptionCenc": {"enabledProtocols": {"download": false, "dash": true, "hls": false, "smoothStreaming": true}, "clearTracks": [], "contentKeys": {"defaultKey": {}}},
        }),
    };
    json!({
        "name": name,
        "id": format!("{}/streamingPolicies/{name}", ctx.prefix),
        "type": "Microsoft.Media/mediaservices/streamingPolicies",
        "properties": props,
    })
}

fn policy_json(ctx: &Ctx, p: &DocRow) -> Value {
    let mut props = p.properties.clone();
    props["created"] = json!(p.created.to_string());
    json!({
        "name": p.name,
        "id": format!("{}/streamingPolicies/{}", ctx.prefix, p.name),
        "type": "Microsoft.Media/mediaservices/streamingPolicies",
        "systemData": crate::system_data(&p.created, &p.created),
        "properties": props,
    })
}

/// The clear protocols a policy enables, or an error saying why it cannot be used here.
async fn policy_protocols(st: &Shared, name: &str) -> ApiResult<(String, Protocols)> {
    if let Some((canonical, p)) = predefined(name) {
        return p.map(|p| (canonical.to_owned(), p)).ok_or_else(|| {
            ApiError::not_supported(format!(
                "Streaming policy '{canonical}' needs content protection (DRM or ClearKey), which this appliance does not offer; use Predefined_ClearStreamingOnly."
            ))
        });
    }
    let key = name.to_ascii_lowercase();
    let row = db(st, move |d| d.policy(&key)).await?.ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "Streaming policy '{name}' was not found; use Predefined_ClearStreamingOnly or create the policy first."
        ))
    })?;
    let ep = &row.properties["noEncryption"]["enabledProtocols"];
    let b = |k: &str| ep[k].as_bool().unwrap_or(false);
    Ok((
        row.name.clone(),
        Protocols { download: b("download"), dash: b("dash"), hls: b("hls"), smooth: b("smoothStreaming") },
    ))
}

pub(crate) fn locator_properties(l: &LocatorRow) -> Value {
    let mut p = l.properties.clone();
    p["assetName"] = json!(l.asset_name);
    p["streamingLocatorId"] = json!(l.locator_id);
    p["streamingPolicyName"] = json!(l.policy_name);
    p["created"] = json!(l.created.to_string());
    if p.get("endTime").is_none_or(Value::is_null) {
        p["endTime"] = json!(END_OF_TIME);
    }
    if p.get("contentKeys").is_none() {
        p["contentKeys"] = json!([]);
    }
    p
}

fn locator_json(ctx: &Ctx, l: &LocatorRow) -> Value {
    json!({
        "name": l.name,
        "id": format!("{}/streamingLocators/{}", ctx.prefix, l.name),
        "type": "Microsoft.Media/mediaservices/streamingLocators",
        "systemData": crate::system_data(&l.created, &l.created),
        "properties": locator_properties(l),
    })
}

pub(crate) async fn handle(st: &Shared, ctx: &Ctx, m: &Method, route: &Route, body: &[u8]) -> ApiResult<Response> {
    match (m, route) {
        (&Method::GET, Route::StreamingLocators) => {
            let page = Page::from(ctx)?;
            let (limit, offset) = (page.top + 1, page.skip);
            let rows = db(st, move |d| d.locators(limit, offset)).await?;
            Ok(ok_json(page.answer(ctx, "streamingLocators", rows.iter().map(|l| locator_json(ctx, l)).collect())))
        }
        (&Method::GET, Route::StreamingLocator(n)) => Ok(ok_json(locator_json(ctx, &get_locator(st, n).await?))),
        (&Method::PUT, Route::StreamingLocator(n)) => create_locator(st, ctx, n, body).await,
        (&Method::DELETE, Route::StreamingLocator(n)) => {
            let key = n.to_ascii_lowercase();
            let deleted = db(st, move |d| d.locator_delete(&key)).await?;
            Ok(if deleted { StatusCode::OK } else { StatusCode::NO_CONTENT }.into_response())
        }
        (&Method::PATCH, Route::StreamingLocator(_)) => Err(ApiError::method_not_allowed(
            "Streaming locators cannot be updated; delete the locator and create it again.",
        )),
        (&Method::POST, Route::StreamingLocatorAction(n, a)) if a.eq_ignore_ascii_case("listPaths") => {
            list_paths(st, n).await
        }
        (&Method::POST, Route::StreamingLocatorAction(n, a)) if a.eq_ignore_ascii_case("listContentKeys") => {
            get_locator(st, n).await?;
            Ok(ok_json(json!({"contentKeys": []})))
        }
        (&Method::POST, Route::StreamingLocatorAction(_, a)) => Err(ApiError::not_found(format!(
            "Unknown streaming locator action '{a}': use listPaths or listContentKeys."
        ))),
        (&Method::GET, Route::StreamingPolicies) => {
            let mut items: Vec<Value> = PREDEFINED.iter().map(|(n, p)| predefined_json(ctx, n, *p)).collect();
            let rows = db(st, |d| d.policies()).await?;
            items.extend(rows.iter().map(|p| policy_json(ctx, p)));
            Ok(ok_json(json!({"value": items})))
        }
        (&Method::GET, Route::StreamingPolicy(n)) => {
            if let Some((name, p)) = predefined(n) {
                return Ok(ok_json(predefined_json(ctx, name, p)));
            }
            let key = n.to_ascii_lowercase();
            let row = db(st, move |d| d.policy(&key))
                .await?
                .ok_or_else(|| ApiError::not_found(format!("Streaming policy '{n}' was not found.")))?;
            Ok(ok_json(policy_json(ctx, &row)))
        }
        (&Method::PUT, Route::StreamingPolicy(n)) => create_policy(st, ctx, n, body).await,
        (&Method::DELETE, Route::StreamingPolicy(n)) => {
            if predefined(n).is_some() {
                return Err(ApiError::bad_request(format!(
                    "'{n}' is a predefined streaming policy and cannot be deleted."
                )));
            }
            let key = n.to_ascii_lowercase();
            let deleted = db(st, move |d| d.policy_delete(&key)).await?;
            Ok(if deleted { StatusCode::OK } else { StatusCode::NO_CONTENT }.into_response())
        }
        _ => Err(method_not_allowed(m, "streaming locators and policies")),
    }
}

async fn get_locator(st: &Shared, name: &str) -> ApiResult<LocatorRow> {
    let key = name.to_ascii_lowercase();
    db(st, move |d| d.locator(&key))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Streaming locator '{name}' was not found.")))
}

async fn create_locator(st: &Shared, ctx: &Ctx, name: &str, body: &[u8]) -> ApiResult<Response> {
    let name = ResourceName::parse(name).map_err(|e| ApiError::invalid_name(e.0))?;
    let v = body::parse_object(body)?;
    let root = Obj::root(&v, "")?;
    let props = root.obj("properties")?;
    if !props.present() {
        return Err(ApiError::invalid_parameter(
            "'properties' is required, with 'assetName' and 'streamingPolicyName'.",
        ));
    }
    let asset_name = props.req_str("assetName")?;
    let policy_name = props.req_str("streamingPolicyName")?;
    let key = name.key();
    if let Some(existing) = db(st, move |d| d.locator(&key)).await? {
        return Err(ApiError::conflict(format!(
            "A streaming locator named '{}' already exists; streaming locators cannot be updated (delete it and create it again).",
            existing.name
        )));
    }
    let asset = assets::get(st, asset_name).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::invalid_parameter(format!("Asset '{asset_name}' was not found; create the asset first."))
        } else {
            e
        }
    })?;
    let (policy, _) = policy_protocols(st, policy_name).await?;
    let locator_id = match props.str("streamingLocatorId")? {
        Some(s) => edge_model::parse_guid(s)
            .ok_or_else(|| ApiError::invalid_parameter("'properties.streamingLocatorId' must be a GUID."))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let mut doc = json!({});
    for k in ["startTime", "endTime"] {
        if let Some(t) = props.str(k)? {
            let ts = Timestamp::parse(t)
                .ok_or_else(|| ApiError::invalid_parameter(format!("'properties.{k}' is not a date-time: '{t}'.")))?;
            doc[k] = json!(if t.starts_with("9999-12-31") { END_OF_TIME.to_owned() } else { ts.to_string() });
        }
    }
    if let (Some(s), Some(e)) = (doc["startTime"].as_str(), doc["endTime"].as_str())
        && s >= e
    {
        return Err(ApiError::invalid_parameter("'properties.startTime' must be before 'properties.endTime'."));
    }
    if let Some(a) = props.str("alternativeMediaId")? {
        doc["alternativeMediaId"] = json!(a);
    }
    if let Some(k) = props.str("defaultContentKeyPolicyName")?.filter(|k| !k.is_empty()) {
        return Err(ApiError::not_supported(format!(
            "'properties.defaultContentKeyPolicyName' ('{k}'): content protection is not supported by this appliance."
        )));
    }
    if props.array("contentKeys")?.is_some_and(|a| !a.is_empty()) {
        return Err(ApiError::not_supported(
            "'properties.contentKeys': content protection is not supported by this appliance.",
        ));
    }
    if let Some(filters) = props.array("filters")? {
        let mut names = Vec::new();
        for f in filters {
            let f = f
                .as_str()
                .ok_or_else(|| ApiError::invalid_parameter("'properties.filters' must be an array of filter names."))?;
            let (fk, aid) = (f.to_ascii_lowercase(), asset.id.clone());
            let found =
                db(st, move |d| Ok(d.filter(None, &fk)?.is_some() || d.filter(Some(&aid), &fk)?.is_some())).await?;
            if !found {
                return Err(ApiError::invalid_parameter(format!(
                    "Filter '{f}' is neither an account filter nor a filter of asset '{}'.",
                    asset.name
                )));
            }
            names.push(json!(f));
        }
        doc["filters"] = json!(names);
    }
    let row = LocatorRow {
        name: name.as_str().to_owned(),
        locator_id,
        asset_name: asset.name.clone(),
        policy_name: policy,
        properties: doc,
        created: Timestamp::now(),
    };
    let r2 = row.clone();
    let row = db(st, move |d| d.locator_insert(&r2)).await?;
    tracing::info!(locator = %row.name, asset = %row.asset_name, id = %row.locator_id, "streaming locator created");
    // Locators answer 201 only: the SDK treats anything else as an error.
    Ok(json_status(StatusCode::CREATED, locator_json(ctx, &row)))
}

async fn list_paths(st: &Shared, name: &str) -> ApiResult<Response> {
    let loc = get_locator(st, name).await?;
    let asset = assets::get(st, &loc.asset_name).await?;
    let (_, p) = policy_protocols(st, &loc.policy_name).await?;
    let base = asset.manifest_name.as_ref().map(|m| format!("/{}/{m}.ism/manifest", loc.locator_id));
    let paths = |fmt: &str| -> Value {
        match &base {
            Some(b) => json!([format!("{b}(format={fmt})")]),
            None => json!([]),
        }
    };
    let mut streaming = Vec::new();
    if p.hls {
        streaming
            .push(json!({"streamingProtocol": "Hls", "encryptionScheme": "NoEncryption", "paths": paths("m3u8-cmaf")}));
    }
    if p.dash {
        streaming.push(
            json!({"streamingProtocol": "Dash", "encryptionScheme": "NoEncryption", "paths": paths("mpd-time-cmaf")}),
        );
    }
    Ok(ok_json(json!({"streamingPaths": streaming, "downloadPaths": []})))
}

async fn create_policy(st: &Shared, ctx: &Ctx, name: &str, body: &[u8]) -> ApiResult<Response> {
    let name = ResourceName::parse(name).map_err(|e| ApiError::invalid_name(e.0))?;
    if predefined(name.as_str()).is_some() || name.key().starts_with("predefined_") {
        return Err(ApiError::conflict(format!("'{name}' is reserved for predefined streaming policies.")));
    }
    let v = body::parse_object(body)?;
    let root = Obj::root(&v, "")?;
    let props = root.obj("properties")?;
    for k in ["envelopeEncryption", "commonEncryptionCenc", "commonEncryptionCbcs"] {
        if props.raw(k).is_some() {
            return Err(ApiError::not_supported(format!(
                "'properties.{k}': content protection is not supported by this appliance; only noEncryption policies can be created."
            )));
        }
    }
    let ne = props.obj("noEncryption")?;
    let ep = ne.obj("enabledProtocols")?;
    if !ep.present() {
        return Err(ApiError::invalid_parameter("'properties.noEncryption.enabledProtocols' is required."));
    }
    let mut prot = json!({});
    for k in ["download", "dash", "hls", "smoothStreaming"] {
        prot[k] =
            json!(ep.bool(k)?.ok_or_else(|| ApiError::invalid_parameter(format!("'{}' is required.", ep.path_of(k))))?);
    }
    let mut doc = json!({"noEncryption": {"enabledProtocols": prot}});
    if let Some(d) = props.str("defaultContentKeyPolicyName")? {
        doc["defaultContentKeyPolicyName"] = json!(d);
    }
    let row = DocRow { name: name.as_str().to_owned(), properties: doc, created: Timestamp::now() };
    let r2 = row.clone();
    db(st, move |d| d.policy_insert(&r2)).await?;
    Ok(json_status(StatusCode::CREATED, policy_json(ctx, &row)))
}
