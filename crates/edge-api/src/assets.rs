//! Assets: where a live output records, and what locators publish. Synchronous (no LRO).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_db::{AssetQuery, AssetRow};
use edge_model::{ResourceName, Timestamp};
use serde_json::{Value, json};

use crate::body::{self, Obj};
use crate::error::{ApiError, ApiResult};
use crate::path::Route;
use crate::{Ctx, Page, Shared, db, json_status, locators, method_not_allowed, odata, ok_json, sync_queue};

/// The storage account name reported for assets created without one.
pub const DEFAULT_STORAGE_ACCOUNT: &str = "local";

pub(crate) async fn handle(st: &Shared, ctx: &Ctx, m: &Method, route: &Route, body: &[u8]) -> ApiResult<Response> {
    match (m, route) {
        (&Method::GET, Route::Assets) => list(st, ctx).await,
        (&Method::GET, Route::Asset(n)) => {
            let a = get(st, n).await?;
            let id = a.id.clone();
            let job = db(st, move |d| d.sync_job(&id)).await?;
            Ok(ok_json(to_json(ctx, &a, sync_queue::job_value(st, job.as_ref()))))
        }
        (&Method::PUT, Route::Asset(n)) => put(st, ctx, n, body, false).await,
        (&Method::PATCH, Route::Asset(n)) => put(st, ctx, n, body, true).await,
        (&Method::DELETE, Route::Asset(n)) => {
            let key = n.to_ascii_lowercase();
            let dir = st.assets_dir.clone();
            let deleted =
                db(st, move |d| d.asset_delete(&key, |id| dir.join(id).to_string_lossy().into_owned())).await?;
            if deleted {
                tracing::info!(asset = %n, "asset deleted");
                collect_garbage(st).await;
            }
            Ok(if deleted { StatusCode::OK } else { StatusCode::NO_CONTENT }.into_response())
        }
        (&Method::POST, Route::AssetAction(n, a)) if a.eq_ignore_ascii_case("listStreamingLocators") => {
            let asset = get(st, n).await?;
            let key = asset.name.to_ascii_lowercase();
            let locs = db(st, move |d| d.locators_for_asset(&key)).await?;
            let items: Vec<Value> = locs
                .iter()
                .map(|l| {
                    let p = locators::locator_properties(l);
                    json!({
                        "name": l.name,
                        "assetName": l.asset_name,
                        "created": l.created.to_string(),
                        "startTime": p.get("startTime").cloned().unwrap_or(Value::Null),
                        "endTime": p["endTime"],
                        "streamingLocatorId": l.locator_id,
                        "streamingPolicyName": l.policy_name,
                        "defaultContentKeyPolicyName": p.get("defaultContentKeyPolicyName").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect();
            Ok(ok_json(json!({"streamingLocators": items})))
        }
        (&Method::POST, Route::AssetAction(n, a))
            if a.eq_ignore_ascii_case("listContainerSas") || a.eq_ignore_ascii_case("getEncryptionKey") =>
        {
            get(st, n).await?;
            Err(ApiError::not_supported(format!(
                "'{a}' is not supported: the appliance keeps recordings on its own disk (and syncs them to the configured cloud storage), not in a blob container it can hand out."
            )))
        }
        (&Method::POST, Route::AssetAction(_, a)) => {
            Err(ApiError::not_found(format!("Unknown asset action '{a}': use listStreamingLocators.")))
        }
        _ => Err(method_not_allowed(m, "assets")),
    }
}

pub(crate) async fn get(st: &Shared, name: &str) -> ApiResult<AssetRow> {
    let key = name.to_ascii_lowercase();
    db(st, move |d| d.asset(&key)).await?.ok_or_else(|| ApiError::not_found(format!("Asset '{name}' was not found.")))
}

/// `edge_sync`: the archive sync state (`properties.edgeSync`, null when none is queued);
/// AMS clients ignore properties they do not know.
pub(crate) fn to_json(ctx: &Ctx, a: &AssetRow, edge_sync: Value) -> Value {
    let mut props = a.properties.clone();
    props["edgeSync"] = edge_sync;
    props["assetId"] = json!(a.id);
    props["container"] = json!(a.container);
    props["storageAccountName"] =
        json!(if a.storage_account.is_empty() { DEFAULT_STORAGE_ACCOUNT } else { &a.storage_account });
    props["storageEncryptionFormat"] = json!("None");
    props["created"] = json!(a.created.to_string());
    props["lastModified"] = json!(a.last_modified.to_string());
    json!({
        "name": a.name,
        "id": format!("{}/assets/{}", ctx.prefix, a.name),
        "type": "Microsoft.Media/mediaservices/assets",
        "systemData": crate::system_data(&a.created, &a.last_modified),
        "properties": props,
    })
}

async fn list(st: &Shared, ctx: &Ctx) -> ApiResult<Response> {
    let page = Page::from(ctx)?;
    let conditions = match ctx.query("$filter") {
        Some(f) if !f.trim().is_empty() => odata::asset_filter(f)?,
        _ => Vec::new(),
    };
    let order = match ctx.query("$orderby") {
        Some(o) if !o.trim().is_empty() => odata::asset_order(o)?,
        _ => Default::default(),
    };
    let q = AssetQuery { conditions, order, limit: page.top + 1, offset: page.skip };
    let rows = db(st, move |d| d.assets(&q)).await?;
    let jobs: std::collections::HashMap<String, edge_db::SyncJobRow> =
        db(st, |d| d.sync_jobs()).await?.into_iter().map(|j| (j.asset_id.clone(), j)).collect();
    let items = rows.iter().map(|a| to_json(ctx, a, sync_queue::job_value(st, jobs.get(&a.id)))).collect();
    Ok(ok_json(page.answer(ctx, "assets", items)))
}

async fn put(st: &Shared, ctx: &Ctx, name: &str, body: &[u8], patch: bool) -> ApiResult<Response> {
    let name = ResourceName::parse(name).map_err(|e| ApiError::invalid_name(e.0))?;
    // The RMS C# sample creates assets with an empty body.
    let v = body::parse_optional_object(body)?;
    let root = Obj::root(&v, "")?;
    let props = root.obj("properties")?;
    let key = name.key();
    let existing = db(st, move |d| d.asset(&key)).await?;
    if patch && existing.is_none() {
        return Err(ApiError::not_found(format!("Asset '{name}' was not found.")));
    }
    let container = props.str("container")?;
    let storage = props.str("storageAccountName")?;
    if let Some(c) = container {
        let ok = (3..=63).contains(&c.len())
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            && !c.starts_with('-')
            && !c.contains("--");
        if !ok {
            return Err(ApiError::invalid_parameter(format!(
                "'properties.container' ('{c}') must be 3 to 63 lowercase letters, digits and single hyphens (a blob container name)."
            )));
        }
    }
    if let Some(s) = storage.filter(|s| !s.is_empty())
        && (s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(ApiError::invalid_parameter(format!(
            "'properties.storageAccountName' ('{s}') must be letters, digits, '-' or '_'."
        )));
    }
    if existing.is_none()
        && let Some(s) = storage.filter(|s| !s.is_empty())
        && !sync_queue::storage_known(st, s)
    {
        let mut names: Vec<String> =
            st.sync.as_ref().map(|x| x.targets().keys().cloned().collect()).unwrap_or_default();
        names.insert(0, DEFAULT_STORAGE_ACCOUNT.into());
        return Err(ApiError::invalid_parameter(format!(
            "'properties.storageAccountName' ('{s}') is not a storage account of this appliance; configured: {} (add a [storage.{s}] table to config.toml).",
            names.join(", ")
        )));
    }
    let now = Timestamp::now();
    let mut doc = existing.as_ref().map(|a| a.properties.clone()).unwrap_or_else(|| json!({}));
    for k in ["description", "alternateId", "encryptionScope"] {
        match props.str(k)? {
            Some(v) => doc[k] = json!(v),
            None if !patch && props.raw(k).is_none() && existing.is_some() => {
                // PUT replaces: fields not restated are cleared.
                if let Some(o) = doc.as_object_mut() {
                    o.remove(k);
                }
            }
            None => {}
        }
    }
    let row = match &existing {
        Some(old) => {
            if let Some(c) = container
                && c != old.container
            {
                return Err(ApiError::invalid_parameter(
                    "'properties.container' cannot be changed after the asset is created.",
                ));
            }
            if let Some(s) = storage.filter(|s| !s.is_empty()) {
                let current =
                    if old.storage_account.is_empty() { DEFAULT_STORAGE_ACCOUNT } else { &old.storage_account };
                if !s.eq_ignore_ascii_case(current) {
                    return Err(ApiError::invalid_parameter(
                        "'properties.storageAccountName' cannot be changed after the asset is created.",
                    ));
                }
            }
            AssetRow { properties: doc, last_modified: now, ..old.clone() }
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            AssetRow {
                container: container.map(str::to_owned).unwrap_or_else(|| format!("asset-{id}")),
                id,
                name: name.as_str().to_owned(),
                storage_account: storage.unwrap_or("").to_owned(),
                manifest_name: None,
                properties: doc,
                created: now,
                last_modified: now,
            }
        }
    };
    let r2 = row.clone();
    let created = db(st, move |d| d.asset_upsert(&r2)).await?;
    if created {
        tracing::info!(asset = %row.name, "asset created");
    }
    let stored = get(st, &row.name).await?;
    let id = stored.id.clone();
    let job = db(st, move |d| d.sync_job(&id)).await?;
    let body = to_json(ctx, &stored, sync_queue::job_value(st, job.as_ref()));
    Ok(json_status(if created { StatusCode::CREATED } else { StatusCode::OK }, body))
}

/// Removes what deletions queued in the garbage table: the path first, then its row, so a
/// crash in between only repeats the removal at the next start.
pub async fn collect_garbage(st: &Shared) {
    let paths = match db(st, |d| d.garbage()).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("cannot read the garbage list: {}", e.message);
            return;
        }
    };
    for p in paths {
        let path = std::path::PathBuf::from(&p);
        let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => std::fs::remove_file(&path),
            Err(e) => Err(e),
        })
        .await;
        match removed {
            Ok(Ok(())) => {
                let p2 = p.clone();
                if let Err(e) = db(st, move |d| d.garbage_done(&p2)).await {
                    tracing::warn!(path = %p, "removed, but cannot update the garbage list: {}", e.message);
                }
            }
            Ok(Err(e)) => tracing::warn!(path = %p, "cannot remove: {e}"),
            Err(e) => tracing::warn!(path = %p, "cannot remove: {e}"),
        }
    }
}
