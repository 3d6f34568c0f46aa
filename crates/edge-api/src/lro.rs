//! Long-running operations, as the official SDK pollers expect them (azure-mgmt-core
//! `ARMPolling`, @azure/core-lro): the initial answer is 201 (PUT) or 202 (POST, PATCH,
//! DELETE) with `Azure-AsyncOperation` (status URL), `Location` (result URL) and
//! `Retry-After`; never a bare 202. Operations are database rows, so a poll after a restart
//! still finds its operation, and the work itself runs in a task that records the outcome.

use std::future::Future;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use edge_db::{OperationKind, OperationRow};
use edge_model::OperationStatus;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::{Ctx, Shared, db};

/// Seconds clients wait between polls. Operations here finish in milliseconds, so polling
/// every second keeps SDK calls short without busy-polling.
pub const RETRY_AFTER_SECS: u32 = 1;

/// The account-relative URLs of an operation.
pub struct OpUrls {
    /// `liveEventOperations/{id}` and the like.
    pub status: String,
    /// `liveEvents/{name}/operationLocations/{id}` and the like.
    pub location: String,
}

pub fn urls(op: &OperationRow) -> OpUrls {
    let (collection, resource_path) = match op.kind {
        OperationKind::LiveEvent => ("liveEventOperations", format!("liveEvents/{}", op.resource)),
        OperationKind::LiveOutput => {
            let (ev, out) = op.resource.split_once('/').unwrap_or((&op.resource, ""));
            ("liveOutputOperations", format!("liveEvents/{ev}/liveOutputs/{out}"))
        }
        OperationKind::StreamingEndpoint => {
            ("streamingEndpointOperations", format!("streamingEndpoints/{}", op.resource))
        }
    };
    OpUrls {
        status: format!("{collection}/{}", op.id),
        location: format!("{resource_path}/operationLocations/{}", op.id),
    }
}

/// The initial answer of an LRO.
pub fn accepted(ctx: &Ctx, op: &OperationRow, status: StatusCode, body: Option<Value>) -> Response {
    let u = urls(op);
    let mut resp = match body {
        Some(b) => (status, axum::Json(b)).into_response(),
        None => status.into_response(),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ctx.account_url(&u.status)) {
        h.insert("azure-asyncoperation", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.account_url(&u.location)) {
        h.insert("location", v);
    }
    h.insert("retry-after", HeaderValue::from(RETRY_AFTER_SECS));
    resp
}

/// Runs the work of an operation in the background and records its outcome.
pub fn spawn<F>(st: &Shared, op_id: String, work: F)
where
    F: Future<Output = ApiResult<()>> + Send + 'static,
{
    let st = st.clone();
    tokio::spawn(async move {
        let outcome = work.await;
        let (status, err) = match &outcome {
            Ok(()) => (OperationStatus::Succeeded, None),
            Err(e) => {
                tracing::warn!(op = %op_id, code = e.code, message = %e.message, "operation failed");
                (OperationStatus::Failed, Some((e.code.to_owned(), e.message.clone())))
            }
        };
        let id = op_id.clone();
        if let Err(e) =
            db(&st, move |d| d.operation_finish(&id, status, err.as_ref().map(|(c, m)| (c.as_str(), m.as_str())))).await
        {
            tracing::error!(op = %op_id, "could not record the outcome of an operation: {}", e.message);
        }
    });
}

/// `GET …/liveEventOperations/{id}` (and the output/endpoint variants): `AsyncOperationResult`.
pub async fn status(st: &Shared, kind: OperationKind, id: &str) -> ApiResult<Response> {
    let op = find(st, kind, id).await?;
    let mut body = json!({"name": op.id, "status": op.status.as_str()});
    if let (Some(code), Some(msg)) = (&op.error_code, &op.error_message) {
        body["error"] = json!({"code": code, "message": msg});
    }
    let mut resp = crate::ok_json(body);
    if op.status == OperationStatus::InProgress {
        // Pollers wait for the latest Retry-After; without it azure-core falls back to 30 s.
        resp.headers_mut().insert("retry-after", HeaderValue::from(RETRY_AFTER_SECS));
    }
    Ok(resp)
}

pub async fn find(st: &Shared, kind: OperationKind, id: &str) -> ApiResult<OperationRow> {
    let key = id.to_ascii_lowercase();
    let op = db(st, move |d| d.operation(&key)).await?;
    op.filter(|o| o.kind == kind)
        .ok_or_else(|| ApiError::not_found(format!("Operation '{id}' was not found (operations are kept for a day).")))
}

/// `GET …/operationLocations/{id}`: 202 while in flight; when done, the resource as it is now
/// (`current`: None once it is deleted, answered 204), or the operation's error.
pub async fn location<Fut>(st: &Shared, ctx: &Ctx, kind: OperationKind, id: &str, current: Fut) -> ApiResult<Response>
where
    Fut: Future<Output = ApiResult<Option<Value>>>,
{
    let op = find(st, kind, id).await?;
    match op.status {
        OperationStatus::InProgress => Ok(accepted(ctx, &op, StatusCode::ACCEPTED, None)),
        OperationStatus::Failed => {
            let code = op.error_code.as_deref().unwrap_or("OperationFailed");
            let message = op.error_message.clone().unwrap_or_else(|| "The operation failed.".into());
            let status = ApiError::status_for_code(code);
            Ok(crate::error::envelope(status, code, &message))
        }
        OperationStatus::Succeeded => match current.await? {
            Some(v) => Ok(crate::ok_json(v)),
            // Deleted: the operation succeeded and there is no resource left to show.
            None => Ok(crate::ok_json(json!({}))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_ams_shapes() {
        let op = OperationRow::new(OperationKind::LiveOutput, "le:e".into(), "Ev/out1".into(), "create");
        let u = urls(&op);
        assert_eq!(u.status, format!("liveOutputOperations/{}", op.id));
        assert_eq!(u.location, format!("liveEvents/Ev/liveOutputs/out1/operationLocations/{}", op.id));
        let op = OperationRow::new(OperationKind::LiveEvent, "le:e".into(), "Ev".into(), "start");
        assert_eq!(urls(&op).location, format!("liveEvents/Ev/operationLocations/{}", op.id));
    }
}
