//! The ARM error envelope. Every 4xx/5xx body is `{"error":{"code","message"}}`; internal
//! details go to the log, never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edge_db::DbError;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }
    pub fn invalid_name(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidResourceName", message)
    }
    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "NotSupported", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message)
    }
    /// An internal failure: logged in full, reported to the client without details.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(context, error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The appliance could not complete the request; the reason is in its log. Retry, and report it if it persists.",
        )
    }

    /// The HTTP status a stored operation error code stands for.
    pub fn status_for_code(code: &str) -> StatusCode {
        match code {
            "NotFound" => StatusCode::NOT_FOUND,
            "Conflict" => StatusCode::CONFLICT,
            "InternalServerError" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => ApiError::conflict(m),
            DbError::NotFound(m) => ApiError::not_found(m),
            other => ApiError::internal("database", other),
        }
    }
}

pub fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"rms-edge\", error=\"invalid_token\", error_description=\"POST /auth/token with your subscriptionId and apiKey, then send Authorization: Bearer <token>\"",
            ),
        );
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, "answering {}", self.status);
        } else {
            tracing::debug!(code = self.code, message = %self.message, "answering {}", self.status);
        }
        envelope(self.status, self.code, &self.message)
    }
}
