//! Account filters and asset filters (dynamic manifest filters). Stored and validated here;
//! the packager applies them to manifests.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_db::DocRow;
use edge_model::{ResourceName, Timestamp};
use serde_json::{Value, json};

use crate::body::{self, Obj};
use crate::error::{ApiError, ApiResult};
use crate::path::Route;
use crate::{Ctx, Shared, assets, db, json_status, method_not_allowed, ok_json};

pub(crate) async fn handle(st: &Shared, ctx: &Ctx, m: &Method, route: &Route, body: &[u8]) -> ApiResult<Response> {
    let (asset, name) = match route {
        Route::AccountFilters => (None, None),
        Route::AccountFilter(n) => (None, Some(n.as_str())),
        Route::AssetFilters(a) => (Some(assets::get(st, a).await?), None),
        Route::AssetFilter(a, n) => (Some(assets::get(st, a).await?), Some(n.as_str())),
        _ => unreachable!("routed here only for filters"),
    };
    let aid = asset.as_ref().map(|a| a.id.clone());
    let (url_base, ty) = match &asset {
        Some(a) => (
            format!("{}/assets/{}/assetFilters", ctx.prefix, a.name),
            "Microsoft.Media/mediaservices/assets/assetFilters",
        ),
        None => (format!("{}/accountFilters", ctx.prefix), "Microsoft.Media/mediaservices/accountFilters"),
    };
    let to_json = |f: &DocRow| json!({"name": f.name, "id": format!("{url_base}/{}", f.name), "type": ty, "properties": f.properties});
    match (m, name) {
        (&Method::GET, None) => {
            let rows = db(st, move |d| d.filters(aid.as_deref())).await?;
            Ok(ok_json(json!({"value": rows.iter().map(to_json).collect::<Vec<_>>()})))
        }
        (&Method::GET, Some(n)) => {
            let key = n.to_ascii_lowercase();
            let row = db(st, move |d| d.filter(aid.as_deref(), &key))
                .await?
                .ok_or_else(|| ApiError::not_found(format!("Filter '{n}' was not found.")))?;
            Ok(ok_json(to_json(&row)))
        }
        (&Method::PUT | &Method::PATCH, Some(n)) => {
            let name = ResourceName::parse(n).map_err(|e| ApiError::invalid_name(e.0))?;
            let v = body::parse_object(body)?;
            let key = name.key();
            let a2 = aid.clone();
            let existing = db(st, move |d| d.filter(a2.as_deref(), &key)).await?;
            if m == Method::PATCH && existing.is_none() {
                return Err(ApiError::not_found(format!("Filter '{n}' was not found.")));
            }
            let mut doc = existing.as_ref().map(|f| f.properties.clone()).unwrap_or_else(|| json!({}));
            let props = Obj::root(&v, "")?.obj("properties")?;
            validate_into(&props, &mut doc)?;
            let row = DocRow {
                name: existing.map(|f| f.name).unwrap_or_else(|| name.as_str().to_owned()),
                properties: doc,
                created: Timestamp::now(),
            };
            let r2 = row.clone();
            let created = db(st, move |d| d.filter_upsert(aid.as_deref(), &r2)).await?;
            Ok(json_status(if created { StatusCode::CREATED } else { StatusCode::OK }, to_json(&row)))
        }
        (&Method::DELETE, Some(n)) => {
            let key = n.to_ascii_lowercase();
            let deleted = db(st, move |d| d.filter_delete(aid.as_deref(), &key)).await?;
            Ok(if deleted { StatusCode::OK } else { StatusCode::NO_CONTENT }.into_response())
        }
        _ => Err(method_not_allowed(m, "filters")),
    }
}

fn validate_into(props: &Obj<'_>, doc: &mut Value) -> ApiResult<()> {
    let ptr = props.obj("presentationTimeRange")?;
    if ptr.present() {
        let mut out = json!({});
        for k in ["startTimestamp", "endTimestamp", "presentationWindowDuration", "liveBackoffDuration", "timescale"] {
            if let Some(n) = ptr.i64(k)? {
                if n < 0 {
                    return Err(ApiError::invalid_parameter(format!("'{}' must not be negative.", ptr.path_of(k))));
                }
                out[k] = json!(n);
            }
        }
        if ptr.i64("timescale")? == Some(0) {
            return Err(ApiError::invalid_parameter("'properties.presentationTimeRange.timescale' must be positive."));
        }
        if let (Some(s), Some(e)) = (ptr.i64("startTimestamp")?, ptr.i64("endTimestamp")?)
            && s >= e
        {
            return Err(ApiError::invalid_parameter("'startTimestamp' must be before 'endTimestamp'."));
        }
        out["forceEndTimestamp"] = json!(ptr.bool("forceEndTimestamp")?.unwrap_or(false));
        doc["presentationTimeRange"] = out;
    }
    let fq = props.obj("firstQuality")?;
    if fq.present() {
        let b = fq
            .i64("bitrate")?
            .ok_or_else(|| ApiError::invalid_parameter("'properties.firstQuality.bitrate' is required."))?;
        doc["firstQuality"] = json!({"bitrate": b});
    }
    if let Some(tracks) = props.array("tracks")? {
        let mut out = Vec::new();
        for (i, t) in tracks.iter().enumerate() {
            let t = Obj::root(t, &format!("properties.tracks[{i}]"))?;
            let sels = t.array("trackSelections")?.ok_or_else(|| {
                ApiError::invalid_parameter(format!("'{}' is required.", t.path_of("trackSelections")))
            })?;
            let mut so = Vec::new();
            for (j, s) in sels.iter().enumerate() {
                let s = Obj::root(s, &format!("properties.tracks[{i}].trackSelections[{j}]"))?;
                let property = s.req_str("property")?;
                let operation = s.req_str("operation")?;
                let value = s.req_str("value")?;
                let prop = ["Unknown", "Type", "Name", "Language", "FourCC", "Bitrate"]
                    .into_iter()
                    .find(|p| p.eq_ignore_ascii_case(property))
                    .ok_or_else(|| {
                        ApiError::invalid_parameter(format!(
                            "'{}' must be one of Type, Name, Language, FourCC, Bitrate.",
                            s.path_of("property")
                        ))
                    })?;
                let op =
                    ["Equal", "NotEqual"].into_iter().find(|p| p.eq_ignore_ascii_case(operation)).ok_or_else(|| {
                        ApiError::invalid_parameter(format!("'{}' must be Equal or NotEqual.", s.path_of("operation")))
                    })?;
                so.push(json!({"property": prop, "operation": op, "value": value}));
            }
            out.push(json!({"trackSelections": so}));
        }
        doc["tracks"] = json!(out);
    }
    Ok(())
}
