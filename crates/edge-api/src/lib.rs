//! The RMS / AMS v3 management API.
//!
//! One entry point for every ARM path: the path is decoded into a typed [`path::Route`] in one
//! place (ARM paths are case-insensitive, which routers are not), authenticated, then dispatched
//! on (method, route). Resource modules validate bodies into typed values once, keep the
//! database the single source of truth, and run long-running operations through [`lro`].

pub mod auth;
pub mod error;
pub mod path;

mod assets;
mod body;
pub mod capture_devices;
mod endpoints;
mod filters;
mod keys;
mod live_events;
mod live_outputs;
mod locators;
pub mod lro;
mod odata;
mod startup;
mod sync_queue;
pub mod thumbnails;

pub use startup::{Recovery, startup};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use edge_db::Db;
use edge_live::LiveRegistry;
use serde_json::{Value, json};

pub use auth::Auth;
use error::{ApiError, ApiResult};
use path::{PathError, Route};

/// The scheme of the listener a request arrived on (inserted as a request extension by the
/// listener), so that absolute URLs in LRO headers use the scheme the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Who the appliance is to API clients.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subscription_id: String,
    pub resource_group: String,
    pub account_name: String,
    pub location: String,
}

/// Where encoders and players reach the box.
#[derive(Debug, Clone)]
pub struct PublicAddrs {
    /// host[:port] for playback (the streaming endpoint's hostName).
    pub public_host: String,
    /// host only (no port), for ingest URLs.
    pub ingest_host: String,
    pub rtmp_port: u16,
    pub rtmps_port: u16,
    pub srt_port: u16,
    pub rtsp_port: u16,
}

pub struct AppState {
    pub db: Arc<Db>,
    pub auth: Auth,
    pub identity: Identity,
    pub addrs: PublicAddrs,
    pub live: LiveRegistry,
    /// A live event stops itself after running this long.
    pub event_max_duration: std::time::Duration,
    /// `<data-dir>/assets`: one directory per asset id holds its recording.
    pub assets_dir: std::path::PathBuf,
    pub version: &'static str,
    /// Bumped by every request the API finishes: the watchdog's view of API progress.
    pub served: AtomicU64,
    /// The archive sync (storage targets, the worker's status); None = not configured.
    pub sync: Option<edge_sync::SyncService>,
}

pub type Shared = Arc<AppState>;

/// Per-request facts the handlers need to build absolute URLs and echo `api-version`.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub scheme: Scheme,
    pub host: String,
    pub api_version: Option<String>,
    pub query: Vec<(String, String)>,
    pub prefix: String,
}

impl Ctx {
    pub fn base(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.host)
    }
    /// An absolute URL under the account, carrying the request's api-version.
    pub fn account_url(&self, rest: &str) -> String {
        let mut u = format!("{}{}/{}", self.base(), self.prefix, rest);
        if let Some(v) = &self.api_version {
            u.push_str("?api-version=");
            u.extend(form_urlencoded::byte_serialize(v.as_bytes()));
        }
        u
    }
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Runs a database call off the async threads.
pub(crate) async fn db<T: Send + 'static>(
    st: &Shared,
    f: impl FnOnce(&Db) -> Result<T, edge_db::DbError> + Send + 'static,
) -> ApiResult<T> {
    let db = st.db.clone();
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(|e| ApiError::internal("database task", e))?
        .map_err(ApiError::from)
}

/// Runs a short read-only query inline. Readers use their own WAL connections, which never
/// wait for the writer, so a single indexed lookup is cheaper here than a hop to the blocking
/// pool. Anything that writes (and so may fsync) goes through [`db`].
pub(crate) fn db_read<T>(st: &Shared, f: impl FnOnce(&Db) -> Result<T, edge_db::DbError>) -> ApiResult<T> {
    f(&st.db).map_err(ApiError::from)
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/auth/token", post(token))
        .route("/healthz", get(healthz))
        .merge(keys::routes())
        .merge(sync_queue::routes())
        .fallback(dispatch)
        .with_state(state)
}

async fn healthz(State(st): State<Shared>) -> Response {
    let db_ok = db(&st, |d| d.ping()).await.is_ok();
    let body = json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "version": st.version,
        "database": if db_ok { "ok" } else { "unavailable" },
        "runningLiveEvents": st.live.running_count(),
    });
    let code = if db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body)).into_response()
}

async fn token(State(st): State<Shared>, body: Bytes) -> Response {
    let result = (|| {
        let v = body::parse_object(&body)?;
        let field = |k: &str| {
            v.get(k).and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "The body must be {{\"subscriptionId\": \"...\", \"apiKey\": \"...\"}}: '{k}' is missing."
                ))
            })
        };
        let (sub, key) = (field("subscriptionId")?, field("apiKey")?);
        st.auth.issue(sub, key)
    })();
    match result {
        Ok(jwt) => {
            st.served.fetch_add(1, Ordering::Relaxed);
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], jwt).into_response()
        }
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED {
                tracing::warn!(reason = %e.message, "refused a token request");
            }
            e.into_response()
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = v.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

fn request_host(headers: &HeaderMap, uri: &Uri) -> String {
    headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(',').next().unwrap_or(s).trim().to_owned())
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into())
}

async fn dispatch(State(st): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::bad_request("The request body is larger than 4 MiB.").into_response();
        }
    };
    let resp = match handle(&st, &parts, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    st.served.fetch_add(1, Ordering::Relaxed);
    resp
}

async fn handle(st: &Shared, parts: &axum::http::request::Parts, body: Bytes) -> ApiResult<Response> {
    let arm = match path::parse(parts.uri.path()) {
        Ok(p) => p,
        Err(PathError::NotArm) => {
            return Err(ApiError::not_found(format!("No such path: {}", parts.uri.path())));
        }
        Err(PathError::Unknown(p)) => {
            authenticate(st, &parts.headers).await?;
            return Err(ApiError::not_found(format!(
                "This appliance does not serve {p}: it implements live events, live outputs, assets, asset and account filters, streaming locators, streaming policies and streaming endpoints."
            )));
        }
    };
    authenticate(st, &parts.headers).await?;
    let id = &st.identity;
    if !arm.subscription.eq_ignore_ascii_case(&id.subscription_id)
        || !arm.resource_group.eq_ignore_ascii_case(&id.resource_group)
        || !arm.account.eq_ignore_ascii_case(&id.account_name)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "No media services account '{}' in resource group '{}' of subscription '{}' here; this appliance is subscription '{}', resource group '{}', account '{}'.",
                arm.account,
                arm.resource_group,
                arm.subscription,
                id.subscription_id,
                id.resource_group,
                id.account_name
            ),
        ));
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    // Behind a reverse proxy, the client's scheme is in X-Forwarded-Proto.
    let forwarded = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or("").trim().to_ascii_lowercase());
    let scheme = match forwarded.as_deref() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ => parts.extensions.get::<Scheme>().copied().unwrap_or(Scheme::Http),
    };
    let ctx = Ctx {
        scheme,
        host: request_host(&parts.headers, &parts.uri),
        api_version: query.iter().find(|(k, _)| k.eq_ignore_ascii_case("api-version")).map(|(_, v)| v.clone()),
        prefix: format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Media/mediaservices/{}",
            id.subscription_id, id.resource_group, id.account_name
        ),
        query,
    };
    let m = &parts.method;
    use Route as R;
    match &arm.route {
        R::LiveEvents
        | R::LiveEvent(_)
        | R::LiveEventAction(..)
        | R::LiveEventOperationLocation(..)
        | R::LiveEventOperation(_) => live_events::handle(st, &ctx, m, &arm.route, &body).await,
        R::LiveOutputs(_) | R::LiveOutput(..) | R::LiveOutputOperationLocation(..) | R::LiveOutputOperation(_) => {
            live_outputs::handle(st, &ctx, m, &arm.route, &body).await
        }
        R::StreamingEndpoints
        | R::StreamingEndpoint(_)
        | R::StreamingEndpointAction(..)
        | R::StreamingEndpointOperationLocation(..)
        | R::StreamingEndpointOperation(_) => endpoints::handle(st, &ctx, m, &arm.route, &body).await,
        R::Assets | R::Asset(_) | R::AssetAction(..) => assets::handle(st, &ctx, m, &arm.route, &body).await,
        R::AssetFilters(_) | R::AssetFilter(..) | R::AccountFilters | R::AccountFilter(_) => {
            filters::handle(st, &ctx, m, &arm.route, &body).await
        }
        R::StreamingLocators
        | R::StreamingLocator(_)
        | R::StreamingLocatorAction(..)
        | R::StreamingPolicies
        | R::StreamingPolicy(_) => locators::handle(st, &ctx, m, &arm.route, &body).await,
        R::ContentKeyPolicies | R::ContentKeyPolicy(_) | R::ContentKeyPolicyAction(..) => {
            content_key_policies(m, &arm.route)
        }
        R::Account => account(st, &ctx, m),
    }
}

/// The API's authentication check (a JWT from `/auth/token` or a raw API key as the bearer, or
/// `x-api-key`), for the appliance's own `/edge/v1` endpoints too.
pub async fn authenticate(st: &Shared, headers: &HeaderMap) -> ApiResult<()> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::unauthorized(
            "AuthenticationFailed",
            "Authentication is required: POST /auth/token with your subscriptionId and apiKey, then send 'Authorization: Bearer <token>'.",
        ));
    };
    // Inline: an HMAC check and one indexed read on a WAL reader (never waits for the writer)
    // cost less than a hop to the blocking pool, and this runs on every API request.
    let result = st.auth.verify_bearer(token);
    if let Err(e) = &result {
        tracing::warn!(reason = %e.message, "refused an API request");
    }
    result.map(|_| ())
}

/// Content protection is not offered: the appliance serves clear streams on the venue LAN.
fn content_key_policies(m: &Method, route: &Route) -> ApiResult<Response> {
    match (m, route) {
        (&Method::GET, Route::ContentKeyPolicies) => Ok(ok_json(json!({"value": []}))),
        (&Method::DELETE, _) => Ok(StatusCode::NO_CONTENT.into_response()),
        (&Method::GET, Route::ContentKeyPolicy(n)) => {
            Err(ApiError::not_found(format!("Content key policy '{n}' was not found.")))
        }
        _ => Err(ApiError::not_supported(
            "Content key policies are not supported: this appliance serves clear (unencrypted) streams only. Use the streaming policy Predefined_ClearStreamingOnly.",
        )),
    }
}

fn account(st: &Shared, ctx: &Ctx, m: &Method) -> ApiResult<Response> {
    if m != Method::GET {
        return Err(ApiError::method_not_allowed(
            "The media services account of the appliance cannot be changed through the API; edit config.toml.",
        ));
    }
    let id = &st.identity;
    Ok(ok_json(json!({
        "id": ctx.prefix,
        "name": id.account_name,
        "type": "Microsoft.Media/mediaservices",
        "location": id.location,
        "tags": {},
        "properties": {
            "mediaServiceId": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.account_name.as_bytes()).to_string(),
            "storageAccounts": [{"id": "local", "type": "Primary"}],
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        }
    })))
}

pub(crate) fn ok_json(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub(crate) fn json_status(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

pub(crate) fn method_not_allowed(m: &Method, what: &str) -> ApiError {
    ApiError::method_not_allowed(format!("{m} is not supported on {what}."))
}

/// `systemData` as ARM reports it.
pub(crate) fn system_data(created: &edge_model::Timestamp, modified: &edge_model::Timestamp) -> Value {
    json!({
        "createdBy": "rms-edge",
        "createdByType": "Key",
        "createdAt": created.to_string(),
        "lastModifiedBy": "rms-edge",
        "lastModifiedByType": "Key",
        "lastModifiedAt": modified.to_string(),
    })
}

/// Paging of list answers. `$top` caps the total number of items (OData: "up to but not
/// greater than n"); the server pages by [`MAX_PAGE`] with `$skiptoken`, and `@odata.nextLink`
/// (carrying the remaining `$top`) is present while more remain.
pub(crate) struct Page {
    /// Items to return in this page.
    pub top: i64,
    pub skip: i64,
    /// The client's remaining `$top`, if it gave one.
    pub cap: Option<i64>,
}

pub(crate) const MAX_PAGE: i64 = 1000;

impl Page {
    pub fn from(ctx: &Ctx) -> ApiResult<Page> {
        let cap = match ctx.query("$top") {
            None => None,
            Some(t) => Some(t.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid_parameter(format!("$top must be a non-negative integer, got '{t}'."))
            })?),
        };
        let top = cap.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let skip = match ctx.query("$skiptoken") {
            None => 0,
            Some(t) => t
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::invalid_parameter(format!("Invalid $skiptoken '{t}'.")))?,
        };
        Ok(Page { top, skip, cap })
    }

    /// Builds `{"value": [...], "@odata.nextLink"?}` from up to `top + 1` fetched items.
    pub fn answer(&self, ctx: &Ctx, collection_url: &str, mut items: Vec<Value>) -> Value {
        let more = items.len() as i64 > self.top && self.cap.is_none_or(|c| c > self.top);
        items.truncate(self.top as usize);
        let mut out = json!({"value": items});
        if more {
            let mut q: Vec<(String, String)> = ctx
                .query
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken") && !k.eq_ignore_ascii_case("$top"))
                .cloned()
                .collect();
            if let Some(c) = self.cap {
                q.push(("$top".into(), (c - self.top).to_string()));
            }
            q.push(("$skiptoken".into(), (self.skip + self.top).to_string()));
            let qs = form_urlencoded::Serializer::new(String::new()).extend_pairs(q).finish();
            out["@odata.nextLink"] = json!(format!("{}{}/{}?{}", ctx.base(), ctx.prefix, collection_url, qs));
        }
        out
    }
}
