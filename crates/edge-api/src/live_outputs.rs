//! Live outputs: the link from a live event to the asset that records it. Immutable (no
//! PATCH); create and delete are long-running operations serialized with the event's own.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_db::{LiveOutputRow, OperationKind, OperationRow};
use edge_model::{
    IsoDuration, LiveOutputName, LiveOutputState, ManifestName, OperationStatus, ProvisioningState, ResourceName,
    Timestamp,
};
use serde_json::{Value, json};

use crate::body::{self, Obj};
use crate::error::{ApiError, ApiResult};
use crate::path::Route;
use crate::{Ctx, Shared, db, live_events, lro, method_not_allowed, ok_json};

pub(crate) async fn handle(st: &Shared, ctx: &Ctx, m: &Method, route: &Route, body: &[u8]) -> ApiResult<Response> {
    match (m, route) {
        (&Method::GET, Route::LiveOutputs(ev)) => {
            let e = live_events::get(st, ev).await?;
            let key = e.name.to_ascii_lowercase();
            let rows = db(st, move |d| d.live_outputs(&key)).await?;
            let items: Vec<Value> = rows.iter().map(|r| to_json(ctx, r)).collect();
            Ok(ok_json(json!({"value": items, "@odata.count": items.len()})))
        }
        (&Method::GET, Route::LiveOutput(ev, n)) => Ok(ok_json(to_json(ctx, &get(st, ev, n).await?))),
        (&Method::PUT, Route::LiveOutput(ev, n)) => create(st, ctx, ev, n, body).await,
        (&Method::DELETE, Route::LiveOutput(ev, n)) => delete(st, ctx, ev, n).await,
        (&Method::GET, Route::LiveOutputOperation(id)) => lro::status(st, OperationKind::LiveOutput, id).await,
        (&Method::GET, Route::LiveOutputOperationLocation(ev, n, id)) => {
            let (ek, ok) = (ev.to_ascii_lowercase(), n.to_ascii_lowercase());
            lro::location(st, ctx, OperationKind::LiveOutput, id, async {
                let row = db(st, move |d| d.live_output(&ek, &ok)).await?;
                Ok(row.map(|r| to_json(ctx, &r)))
            })
            .await
        }
        (&Method::PATCH, Route::LiveOutput(..)) => Err(ApiError::method_not_allowed(
            "Live outputs cannot be updated; delete the live output and create it again.",
        )),
        _ => Err(method_not_allowed(m, "live outputs")),
    }
}

async fn get(st: &Shared, ev: &str, name: &str) -> ApiResult<LiveOutputRow> {
    let e = live_events::get(st, ev).await?;
    let (ek, ok) = (e.name.to_ascii_lowercase(), name.to_ascii_lowercase());
    db(st, move |d| d.live_output(&ek, &ok))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Live output '{name}' of live event '{}' was not found.", e.name)))
}

pub(crate) fn to_json(ctx: &Ctx, o: &LiveOutputRow) -> Value {
    let mut props = o.properties.clone();
    props["assetName"] = json!(o.asset_name);
    props["manifestName"] = json!(o.manifest_name);
    props["provisioningState"] = json!(o.provisioning.as_str());
    props["resourceState"] = json!(o.state.as_str());
    props["created"] = json!(o.created.to_string());
    props["lastModified"] = json!(o.last_modified.to_string());
    json!({
        "name": o.name,
        "id": format!("{}/liveevents/{}/liveoutputs/{}", ctx.prefix, o.live_event_name, o.name),
        "type": "Microsoft.Media/mediaservices/liveevents/liveoutputs",
        "systemData": crate::system_data(&o.created, &o.last_modified),
        "properties": props,
    })
}

fn window(o: &Obj<'_>, k: &str, required: bool, max: std::time::Duration) -> ApiResult<Option<IsoDuration>> {
    let s = match o.str(k)? {
        Some(s) => s,
        None if required => {
            return Err(ApiError::invalid_parameter(format!(
                "'{}' is required (ISO 8601, e.g. \"PT5M\").",
                o.path_of(k)
            )));
        }
        None => return Ok(None),
    };
    let d = IsoDuration::parse(s).map_err(|e| ApiError::invalid_parameter(format!("'{}': {e}.", o.path_of(k))))?;
    let min = std::time::Duration::from_secs(60);
    if d.0 < min || d.0 > max {
        return Err(ApiError::invalid_parameter(format!(
            "'{}' must be between 1 minute and {} (got {s}).",
            o.path_of(k),
            IsoDuration(max)
        )));
    }
    Ok(Some(d))
}

async fn create(st: &Shared, ctx: &Ctx, ev: &str, name: &str, body: &[u8]) -> ApiResult<Response> {
    let name = LiveOutputName::parse(name).map_err(|e| ApiError::invalid_name(e.0))?;
    let v = body::parse_object(body)?;
    let event = live_events::get(st, ev).await?;
    let (ek, nk) = (event.name.to_ascii_lowercase(), name.key());
    if let Some(existing) = db(st, move |d| d.live_output(&ek, &nk)).await? {
        return Err(ApiError::conflict(format!(
            "Live output '{}' already exists on live event '{}'; live outputs cannot be updated (delete it and create it again).",
            existing.name, event.name
        )));
    }
    let root = Obj::root(&v, "")?;
    let props = root.obj("properties")?;
    if !props.present() {
        return Err(ApiError::invalid_parameter(
            "'properties' is required, with 'assetName' and 'archiveWindowLength'.",
        ));
    }
    let asset = ResourceName::parse(props.req_str("assetName")?).map_err(|e| ApiError::invalid_parameter(e.0))?;
    let archive =
        window(&props, "archiveWindowLength", true, std::time::Duration::from_secs(25 * 3600))?.expect("required");
    let low_latency_v2 =
        event.properties["streamOptions"].as_array().is_some_and(|a| a.iter().any(|o| o == "LowLatencyV2"));
    if low_latency_v2 && archive.0 > std::time::Duration::from_secs(6 * 3600) {
        return Err(ApiError::invalid_parameter(
            "LowLatencyV2 live events keep at most 6 hours: 'properties.archiveWindowLength' must be at most PT6H.",
        ));
    }
    let rewind = window(&props, "rewindWindowLength", false, archive.0)?;
    let manifest = match props.str("manifestName")? {
        Some(m) if !m.is_empty() => {
            ManifestName::parse(m).map_err(|e| ApiError::invalid_parameter(e.0))?.as_str().to_owned()
        }
        _ => "manifest".to_owned(),
    };
    let hls = props.obj("hls")?;
    let mut stored = json!({
        "description": props.str("description")?.unwrap_or(""),
        "archiveWindowLength": archive.to_string(),
        "rewindWindowLength": rewind.map(|r| r.to_string()),
        "hls": null,
        "outputSnapTime": props.i64("outputSnapTime")?.unwrap_or(0),
    });
    if hls.present() {
        let n = hls.i64("fragmentsPerTsSegment")?;
        if n.is_some_and(|n| !(1..=10).contains(&n)) {
            return Err(ApiError::invalid_parameter(
                "'properties.hls.fragmentsPerTsSegment' must be between 1 and 10.",
            ));
        }
        stored["hls"] = json!({"fragmentsPerTsSegment": n});
    }
    let now = Timestamp::now();
    let row = LiveOutputRow {
        id: uuid::Uuid::new_v4().to_string(),
        live_event_name: event.name.clone(),
        name: name.as_str().to_owned(),
        asset_name: asset.as_str().to_owned(),
        manifest_name: manifest,
        archive_window_ms: archive.0.as_millis() as i64,
        // Creating an output only stores it, so it is Running the moment its row is in and the
        // operation is stored as finished: a client that starts or stops the event right after
        // the 201 is not refused with "another operation is in progress".
        state: LiveOutputState::Running,
        provisioning: ProvisioningState::Succeeded,
        properties: stored,
        created: now,
        last_modified: now,
    };
    let mut operation = OperationRow::new(
        OperationKind::LiveOutput,
        format!("le:{}", event.name.to_ascii_lowercase()),
        format!("{}/{}", event.name, row.name),
        "create",
    );
    operation.status = OperationStatus::Succeeded;
    operation.finished = Some(now);
    let (r2, o2, max) = (row.clone(), operation.clone(), event.encoding_type.max_live_outputs());
    let row = db(st, move |d| d.live_output_insert(&r2, max, &o2)).await.map_err(|e| {
        // A missing asset is a mistake in the request body, not a missing path resource.
        if e.status == StatusCode::NOT_FOUND { ApiError::invalid_parameter(e.message) } else { e }
    })?;
    tracing::info!(event = %event.name, output = %row.name, asset = %row.asset_name, "live output created");
    Ok(lro::accepted(ctx, &operation, StatusCode::CREATED, Some(to_json(ctx, &row))))
}

async fn delete(st: &Shared, ctx: &Ctx, ev: &str, name: &str) -> ApiResult<Response> {
    let (ek, nk) = (ev.to_ascii_lowercase(), name.to_ascii_lowercase());
    let Some(out) = db(st, move |d| d.live_output(&ek, &nk)).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let operation = OperationRow::new(
        OperationKind::LiveOutput,
        format!("le:{}", out.live_event_name.to_ascii_lowercase()),
        format!("{}/{}", out.live_event_name, out.name),
        "delete",
    );
    let (o2, out2) = (operation.clone(), out.clone());
    db(st, move |d| d.live_output_begin_delete(&out2, &o2)).await?;
    let st2 = st.clone();
    lro::spawn(st, operation.id.clone(), async move {
        let id = out.id.clone();
        match db(&st2, move |d| d.live_output_delete(&id)).await {
            Ok(_) | Err(ApiError { status: StatusCode::NOT_FOUND, .. }) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(event = %out.live_event_name, output = %out.name, asset = %out.asset_name, "live output deleted; the asset keeps the recording");
        crate::sync_queue::enqueue_name(&st2, &out.asset_name).await;
        Ok(())
    });
    Ok(lro::accepted(ctx, &operation, StatusCode::ACCEPTED, None))
}
