//! `GET /edge/v1/sync` (the archive sync queue) and `POST /edge/v1/sync/{assetName}/retry`,
//! for the technician console; and the hooks that queue an asset's archive when its recording
//! ends. Not ARM resources: they live under the appliance's own `/edge/v1` prefix, behind the
//! same authentication as the API.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use edge_db::{AssetRow, SyncJobRow};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::{Shared, authenticate, db, json_status, ok_json};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/edge/v1/sync", get(list))
        .route("/edge/v1/sync/settings", get(settings).put(set_settings))
        .route("/edge/v1/sync/{asset}/retry", post(retry))
}

fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// The storage account an asset's archive goes to: its own, else the default; None = the
/// archive stays on the appliance.
pub(crate) fn storage_of(st: &Shared, a: &AssetRow) -> Option<String> {
    let default = st.sync.as_ref().map(|s| s.default_storage().to_owned()).unwrap_or_default();
    let s = if a.storage_account.is_empty()
        || a.storage_account.eq_ignore_ascii_case(crate::assets::DEFAULT_STORAGE_ACCOUNT)
    {
        default
    } else {
        a.storage_account.clone()
    };
    (!s.is_empty()).then_some(s)
}

/// Whether an asset may name `name` as its storage account: a configured storage target, or the
/// appliance's own "local". An appliance without any storage target does not sync, so there the
/// name is only echoed (as before archive sync existed; AMS examples name accounts such as
/// "storage0") and any name is accepted.
pub(crate) fn storage_known(st: &Shared, name: &str) -> bool {
    let Some(sync) = st.sync.as_ref().filter(|s| !s.targets().is_empty()) else { return true };
    name.eq_ignore_ascii_case(crate::assets::DEFAULT_STORAGE_ACCOUNT)
        || sync.targets().keys().any(|k| k.eq_ignore_ascii_case(name))
}

/// `properties.edgeSync` of an asset: its sync job, or null when none is queued.
pub(crate) fn job_value(st: &Shared, job: Option<&SyncJobRow>) -> Value {
    match job {
        Some(j) => edge_sync::job_json(j, st.sync.as_ref().and_then(|s| s.url(j))),
        None => Value::Null,
    }
}

/// Queues the archives of these assets (their recording ended). Assets without a storage
/// target, or without a recording, are left alone. Never fails the caller: a queueing error
/// is logged, and the asset can be queued again with the retry endpoint.
pub(crate) async fn enqueue(st: &Shared, asset_ids: Vec<String>) {
    let Some(sync) = st.sync.clone() else { return };
    for id in asset_ids {
        let st2 = st.clone();
        let r = db(st, move |d| {
            let Some(a) = d.asset_by_id(&id)? else { return Ok(None) };
            if !d.asset_has_recording(&a.id)? {
                return Ok(None);
            }
            let Some(storage) = storage_of(&st2, &a) else { return Ok(None) };
            d.sync_enqueue(&a.id, &storage, false)?;
            Ok(Some((a.name, storage)))
        })
        .await;
        match r {
            Ok(Some((name, storage))) => tracing::info!(asset = %name, storage = %storage, "archive queued for sync"),
            Ok(None) => {}
            Err(e) => tracing::error!("cannot queue an archive for sync: {}", e.message),
        }
    }
    sync.wake();
}

/// [`enqueue`] by asset name (live outputs name their asset).
pub(crate) async fn enqueue_name(st: &Shared, asset_name: &str) {
    let key = asset_name.to_ascii_lowercase();
    match db(st, move |d| d.asset(&key)).await {
        Ok(Some(a)) => enqueue(st, vec![a.id]).await,
        Ok(None) => {}
        Err(e) => tracing::error!("cannot queue an archive for sync: {}", e.message),
    }
}

async fn list(State(st): State<Shared>, headers: HeaderMap) -> Response {
    respond(
        async {
            authenticate(&st, &headers).await?;
            let jobs = db(&st, |d| d.sync_jobs()).await?;
            let value: Vec<Value> = jobs
                .iter()
                .map(|j| {
                    let mut v = job_value(&st, Some(j));
                    v["assetName"] = json!(j.asset_name);
                    v["assetId"] = json!(j.asset_id);
                    v["container"] = json!(j.container);
                    v["created"] = json!(j.created.to_string());
                    v["updated"] = json!(j.updated.to_string());
                    v
                })
                .collect();
            let mut out = st.sync.as_ref().map(|s| s.status_json()).unwrap_or_else(|| json!({"targets": []}));
            out["value"] = json!(value);
            Ok(ok_json(out))
        }
        .await,
    )
}

fn sync_service(st: &Shared) -> ApiResult<&edge_sync::SyncService> {
    st.sync.as_ref().filter(|s| !s.targets().is_empty()).ok_or_else(|| {
        ApiError::not_found(
            "Archive sync is not configured: add a [storage.<name>] target to the appliance's config.toml and restart it.",
        )
    })
}

async fn settings_json(sync: &edge_sync::SyncService) -> Value {
    let (mbps, window, set) = sync.upload_cap().await;
    json!({"uploadMaxMbps": mbps, "uploadUnlimitedWindow": window, "source": if set { "console" } else { "config" }})
}

/// `GET /edge/v1/sync/settings`: the upload bandwidth cap now.
async fn settings(State(st): State<Shared>, headers: HeaderMap) -> Response {
    respond(
        async {
            authenticate(&st, &headers).await?;
            Ok(ok_json(settings_json(sync_service(&st)?).await))
        }
        .await,
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    upload_max_mbps: f64,
    #[serde(default)]
    upload_unlimited_window: String,
}

/// `PUT /edge/v1/sync/settings`: sets the upload cap at run time (kept across restarts; it then
/// wins over the configuration's `upload-max-mbps` / `upload-unlimited-window`).
async fn set_settings(State(st): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    respond(
        async {
            authenticate(&st, &headers).await?;
            let sync = sync_service(&st)?;
            let b: SettingsBody = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(format!(
                    "The body must be {{\"uploadMaxMbps\": <Mbit/s, 0 = no cap>, \"uploadUnlimitedWindow\": \"18:00-09:00\" or \"\"}}: {e}"
                ))
            })?;
            sync.set_upload_cap(b.upload_max_mbps, &b.upload_unlimited_window)
                .await
                .map_err(ApiError::invalid_parameter)?;
            Ok(ok_json(settings_json(sync).await))
        }
        .await,
    )
}

#[derive(serde::Deserialize)]
struct RetryQuery {
    resync: Option<bool>,
}

/// Queues an asset again now (a failed or waiting job), or with `?resync=true` uploads its
/// whole copy again. An asset with a recording but no job yet (e.g. recorded before a target
/// was configured) is queued.
async fn retry(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(asset): Path<String>,
    Query(q): Query<RetryQuery>,
) -> Response {
    respond(
        async {
            authenticate(&st, &headers).await?;
            let a = crate::assets::get(&st, &asset).await?;
            let Some(storage) = storage_of(&st, &a) else {
                return Err(ApiError::invalid_parameter(format!(
                    "Asset '{}' has no storage target: its storageAccountName is '{}' and no default-storage is configured.",
                    a.name,
                    if a.storage_account.is_empty() { crate::assets::DEFAULT_STORAGE_ACCOUNT } else { &a.storage_account }
                )));
            };
            let (id, resync) = (a.id.clone(), q.resync.unwrap_or(false));
            let job = db(&st, move |d| {
                if !d.sync_retry(&id, resync)? {
                    if !d.asset_has_recording(&id)? {
                        return Err(edge_db::DbError::Conflict(
                            "The asset holds no recording yet: there is nothing to sync.".into(),
                        ));
                    }
                    d.sync_enqueue(&id, &storage, false)?;
                }
                d.sync_job(&id)
            })
            .await?;
            if let Some(s) = &st.sync {
                s.wake();
            }
            tracing::info!(asset = %a.name, resync, "archive sync retried");
            Ok(json_status(StatusCode::ACCEPTED, job_value(&st, job.as_ref())))
        }
        .await,
    )
}
