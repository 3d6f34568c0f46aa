//! Streaming endpoints. `default` always exists and is Running; its `hostName` is the
//! appliance's public host, so `https://{hostName}{listPaths path}` plays on the LAN. Other
//! endpoints can be created for client code that expects to, and serve the same host.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_db::{EndpointRow, OperationKind, OperationRow};
use edge_model::{ProvisioningState, StreamingEndpointName, StreamingEndpointState, Timestamp};
use serde_json::{Value, json};

use crate::body::{self, Obj};
use crate::error::{ApiError, ApiResult};
use crate::path::Route;
use crate::{Ctx, Shared, db, lro, method_not_allowed, ok_json};

pub const DEFAULT_NAME: &str = "default";

/// The row seeded at start-up so that `default` always exists.
pub fn default_row(location: &str) -> EndpointRow {
    let now = Timestamp::now();
    EndpointRow {
        name: DEFAULT_NAME.into(),
        location: location.into(),
        tags: json!({}),
        state: StreamingEndpointState::Running,
        provisioning: ProvisioningState::Succeeded,
        properties: json!({"description": "The appliance's own streaming endpoint", "scaleUnits": 0, "cdnEnabled": false}),
        created: now,
        last_modified: now,
    }
}

pub(crate) async fn handle(st: &Shared, ctx: &Ctx, m: &Method, route: &Route, body: &[u8]) -> ApiResult<Response> {
    match (m, route) {
        (&Method::GET, Route::StreamingEndpoints) => {
            let rows = db(st, |d| d.endpoints()).await?;
            let items: Vec<Value> = rows.iter().map(|r| to_json(st, ctx, r)).collect();
            Ok(ok_json(json!({"value": items, "@odata.count": items.len()})))
        }
        (&Method::GET, Route::StreamingEndpoint(n)) => Ok(ok_json(to_json(st, ctx, &get(st, n).await?))),
        (&Method::PUT, Route::StreamingEndpoint(n)) => put(st, ctx, n, body, false).await,
        (&Method::PATCH, Route::StreamingEndpoint(n)) => put(st, ctx, n, body, true).await,
        (&Method::DELETE, Route::StreamingEndpoint(n)) => delete(st, ctx, n).await,
        (&Method::GET, Route::StreamingEndpointAction(n, a)) if a.eq_ignore_ascii_case("skus") => {
            get(st, n).await?;
            Ok(ok_json(json!({"value": [{
                "resourceType": "Microsoft.Media/mediaservices/streamingEndpoints",
                "sku": {"name": "Standard"},
                "capacity": {"scaleType": "None", "default": 0, "minimum": 0, "maximum": 0},
            }]})))
        }
        (&Method::POST, Route::StreamingEndpointAction(n, a)) => action(st, ctx, n, a, body).await,
        (&Method::GET, Route::StreamingEndpointOperation(id)) => {
            lro::status(st, OperationKind::StreamingEndpoint, id).await
        }
        (&Method::GET, Route::StreamingEndpointOperationLocation(n, id)) => {
            let key = n.to_ascii_lowercase();
            lro::location(st, ctx, OperationKind::StreamingEndpoint, id, async {
                let row = db(st, move |d| d.endpoint(&key)).await?;
                Ok(row.map(|r| to_json(st, ctx, &r)))
            })
            .await
        }
        _ => Err(method_not_allowed(m, "streaming endpoints")),
    }
}

async fn get(st: &Shared, name: &str) -> ApiResult<EndpointRow> {
    let key = name.to_ascii_lowercase();
    db(st, move |d| d.endpoint(&key)).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "Streaming endpoint '{name}' was not found; this appliance's endpoint is 'default'."
        ))
    })
}

fn to_json(st: &Shared, ctx: &Ctx, e: &EndpointRow) -> Value {
    let mut props = e.properties.clone();
    props["hostName"] = json!(st.addrs.public_host);
    props["resourceState"] = json!(e.state.as_str());
    props["provisioningState"] = json!(e.provisioning.as_str());
    props["created"] = json!(e.created.to_string());
    props["lastModified"] = json!(e.last_modified.to_string());
    for (k, d) in [
        ("customHostNames", json!([])),
        ("cdnEnabled", json!(false)),
        ("scaleUnits", json!(0)),
        ("maxCacheAge", Value::Null),
        ("availabilitySetName", Value::Null),
        ("cdnProvider", Value::Null),
        ("cdnProfile", Value::Null),
        ("accessControl", Value::Null),
        ("crossSiteAccessPolicies", Value::Null),
        // AMS's "no free trial" value.
        ("freeTrialEndTime", json!("0001-01-01T00:00:00Z")),
    ] {
        if props.get(k).is_none() {
            props[k] = d;
        }
    }
    json!({
        "name": e.name,
        "id": format!("{}/streamingendpoints/{}", ctx.prefix, e.name),
        "type": "Microsoft.Media/mediaservices/streamingEndpoints",
        "location": e.location,
        "tags": e.tags,
        "sku": {"name": "Standard", "capacity": props["scaleUnits"].as_i64().unwrap_or(0) * 600},
        "systemData": crate::system_data(&e.created, &e.last_modified),
        "properties": props,
    })
}

fn op(name: &str, action: &str) -> OperationRow {
    OperationRow::new(
        OperationKind::StreamingEndpoint,
        format!("se:{}", name.to_ascii_lowercase()),
        name.to_owned(),
        action,
    )
}

async fn put(st: &Shared, ctx: &Ctx, name: &str, body: &[u8], patch: bool) -> ApiResult<Response> {
    let name = StreamingEndpointName::parse(name).map_err(|e| ApiError::invalid_name(e.0))?;
    let v = body::parse_object(body)?;
    let key = name.key();
    let existing = db(st, move |d| d.endpoint(&key)).await?;
    if patch && existing.is_none() {
        return Err(ApiError::not_found(format!("Streaming endpoint '{name}' was not found.")));
    }
    let root = Obj::root(&v, "")?;
    let location = match (root.str("location")?, &existing) {
        (Some(l), _) if !l.trim().is_empty() => l.to_owned(),
        (_, Some(e)) => e.location.clone(),
        _ => return Err(ApiError::invalid_parameter("'location' is required.")),
    };
    let props = root.obj("properties")?;
    let mut doc = existing.as_ref().map(|e| e.properties.clone()).unwrap_or_else(|| json!({}));
    if !patch && !props.present() {
        return Err(ApiError::invalid_parameter("'properties' is required (at least {\"scaleUnits\": 0})."));
    }
    if let Some(d) = props.str("description")? {
        doc["description"] = json!(d);
    }
    match props.i64("scaleUnits")? {
        Some(n) if !(0..=10).contains(&n) => {
            return Err(ApiError::invalid_parameter("'properties.scaleUnits' must be between 0 and 10."));
        }
        Some(n) => doc["scaleUnits"] = json!(n),
        None if !patch && existing.is_none() => {
            return Err(ApiError::invalid_parameter("'properties.scaleUnits' is required."));
        }
        None => {}
    }
    if let Some(a) = props.str("availabilitySetName")? {
        doc["availabilitySetName"] = json!(a);
    }
    if let Some(a) = props.i64("maxCacheAge")? {
        doc["maxCacheAge"] = json!(a);
    }
    if let Some(h) = props.array("customHostNames")? {
        if h.iter().any(|x| !x.is_string()) {
            return Err(ApiError::invalid_parameter("'properties.customHostNames' must be an array of strings."));
        }
        doc["customHostNames"] = json!(h);
    }
    if props.bool("cdnEnabled")? == Some(true) {
        return Err(ApiError::not_supported(
            "A CDN cannot be enabled on the appliance's streaming endpoint; put a CDN in front of the archive sync target instead.",
        ));
    }
    let ac = props.obj("accessControl")?;
    if ac.present() {
        // The IP allow list is validated like a live event's; Akamai signatures are kept as sent.
        let mut v = crate::live_events::access_control(&ac)?;
        if let Some(ak) = ac.raw("akamai") {
            v["akamai"] = ak.clone();
        }
        doc["accessControl"] = v;
    }
    if let Some(x) = props.raw("crossSiteAccessPolicies") {
        doc["crossSiteAccessPolicies"] = x.clone();
    }
    let now = Timestamp::now();
    let auto_start = ctx.query("autoStart").is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let row = EndpointRow {
        name: existing.as_ref().map(|e| e.name.clone()).unwrap_or_else(|| name.as_str().to_owned()),
        location,
        tags: match root.raw("tags") {
            Some(_) => Value::Object(root.string_map("tags")?),
            None => existing.as_ref().map(|e| e.tags.clone()).unwrap_or_else(|| json!({})),
        },
        state: existing.as_ref().map(|e| e.state).unwrap_or(StreamingEndpointState::Stopped),
        provisioning: ProvisioningState::InProgress,
        properties: doc,
        created: existing.as_ref().map(|e| e.created).unwrap_or(now),
        last_modified: now,
    };
    let operation = op(&row.name, if patch { "update" } else { "create" });
    let (r2, o2) = (row.clone(), operation.clone());
    let created = db(st, move |d| d.endpoint_put(&r2, &o2)).await?;
    let st2 = st.clone();
    let (key, final_state) = (name.key(), if auto_start { StreamingEndpointState::Running } else { row.state });
    lro::spawn(
        st,
        operation.id.clone(),
        async move { db(&st2, move |d| d.endpoint_set(&key, final_state, None)).await },
    );
    let status = if created {
        StatusCode::CREATED
    } else if patch {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok(lro::accepted(ctx, &operation, status, Some(to_json(st, ctx, &row))))
}

async fn delete(st: &Shared, ctx: &Ctx, name: &str) -> ApiResult<Response> {
    if name.eq_ignore_ascii_case(DEFAULT_NAME) {
        return Err(ApiError::bad_request(
            "The 'default' streaming endpoint is the appliance's own and cannot be deleted.",
        ));
    }
    let key = name.to_ascii_lowercase();
    let k2 = key.clone();
    let Some(e) = db(st, move |d| d.endpoint(&k2)).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let operation = op(&e.name, "delete");
    let o2 = operation.clone();
    let k2 = key.clone();
    db(st, move |d| d.endpoint_begin_op(&k2, StreamingEndpointState::Deleting, &o2)).await?;
    let st2 = st.clone();
    lro::spawn(st, operation.id.clone(), async move { db(&st2, move |d| d.endpoint_delete(&key)).await.map(|_| ()) });
    Ok(lro::accepted(ctx, &operation, StatusCode::ACCEPTED, None))
}

async fn action(st: &Shared, ctx: &Ctx, name: &str, action: &str, body: &[u8]) -> ApiResult<Response> {
    let e = get(st, name).await?;
    let (during, target, scale) = if action.eq_ignore_ascii_case("start") {
        (StreamingEndpointState::Starting, StreamingEndpointState::Running, None)
    } else if action.eq_ignore_ascii_case("stop") {
        (StreamingEndpointState::Stopping, StreamingEndpointState::Stopped, None)
    } else if action.eq_ignore_ascii_case("scale") {
        let v = body::parse_object(body)?;
        let n = Obj::root(&v, "")?
            .i64("scaleUnit")?
            .ok_or_else(|| ApiError::invalid_parameter("'scaleUnit' is required."))?;
        if !(0..=10).contains(&n) {
            return Err(ApiError::invalid_parameter("'scaleUnit' must be between 0 and 10."));
        }
        (StreamingEndpointState::Scaling, e.state, Some(n))
    } else {
        return Err(ApiError::not_found(format!(
            "Unknown streaming endpoint action '{action}': use start, stop or scale."
        )));
    };
    let operation = op(&e.name, &action.to_ascii_lowercase());
    let (o2, key) = (operation.clone(), e.name.to_ascii_lowercase());
    let k2 = key.clone();
    db(st, move |d| d.endpoint_begin_op(&k2, during, &o2)).await?;
    let st2 = st.clone();
    let mut props = e.properties.clone();
    if let Some(n) = scale {
        props["scaleUnits"] = json!(n);
    }
    lro::spawn(
        st,
        operation.id.clone(),
        async move { db(&st2, move |d| d.endpoint_set(&key, target, Some(&props))).await },
    );
    Ok(lro::accepted(ctx, &operation, StatusCode::ACCEPTED, None))
}
