//! `GET/POST/DELETE /edge/v1/keys`: the appliance's API keys over HTTP, for the technician
//! console (the same operations as `rms-edge keys list|create|revoke`). Not an ARM resource: AMS
//! has no key management, so these live under the appliance's own `/edge/v1` prefix, behind the
//! same authentication as the API.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::{Shared, authenticate, body, db, json_status, ok_json};

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/edge/v1/keys", get(list).post(create)).route("/edge/v1/keys/{id}", delete(revoke))
}

fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn list(State(st): State<Shared>, headers: HeaderMap) -> Response {
    respond(
        async {
            authenticate(&st, &headers).await?;
            let keys = db(&st, |d| d.key_list()).await?;
            let value: Vec<Value> = keys
                .into_iter()
                .map(|k| {
                    json!({
                        "id": k.id,
                        "name": k.name,
                        "created": k.created.to_string(),
                        "revoked": k.revoked.map(|t| t.to_string()),
                    })
                })
                .collect();
            Ok(ok_json(json!({"value": value})))
        }
        .await,
    )
}

/// A key name: what `rms-edge keys create --name` would accept on a command line, kept short
/// and printable so that it lists cleanly.
fn key_name(v: &Value) -> ApiResult<String> {
    let name = match v.get("name") {
        None | Some(Value::Null) => return Ok("console".into()),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(ApiError::invalid_parameter("'name' must be a string.")),
    };
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_parameter(
            "A key name is 1 to 64 printable characters (for example 'camera-op-laptop').",
        ));
    }
    Ok(name.to_owned())
}

async fn create(State(st): State<Shared>, headers: HeaderMap, raw: Bytes) -> Response {
    respond(
        async {
            authenticate(&st, &headers).await?;
            let v = if raw.iter().all(u8::is_ascii_whitespace) { json!({}) } else { body::parse_object(&raw)? };
            let name = key_name(&v)?;
            let k = crate::auth::new_key(&name);
            let row = k.row.clone();
            db(&st, move |d| d.key_insert(&row)).await?;
            tracing::info!(id = %k.row.id, name = %name, "created an API key through the API");
            Ok(json_status(
                StatusCode::CREATED,
                json!({
                    "id": k.row.id,
                    "name": name,
                    "created": k.row.created.to_string(),
                    "revoked": null,
                    "apiKey": k.secret,
                }),
            ))
        }
        .await,
    )
}

async fn revoke(State(st): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    respond(
        async {
            authenticate(&st, &headers).await?;
            let keys = db(&st, |d| d.key_list()).await?;
            let Some(key) = keys.iter().find(|k| k.id == id && k.revoked.is_none()) else {
                return Err(ApiError::not_found(format!("There is no valid API key with id '{id}'.")));
            };
            // A config-file key also lets clients in; without one, revoking the last stored key
            // would lock everyone out until someone runs `rms-edge keys create` on the box.
            let valid = keys.iter().filter(|k| k.revoked.is_none()).count();
            if valid == 1 && !st.auth.has_config_key() {
                return Err(ApiError::conflict(format!(
                    "Key '{}' is the last valid API key: create another key first, then revoke this one.",
                    key.name
                )));
            }
            let kid = id.clone();
            if !db(&st, move |d| d.key_revoke(&kid)).await? {
                return Err(ApiError::not_found(format!("There is no valid API key with id '{id}'.")));
            }
            tracing::info!(id = %id, "revoked an API key through the API");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        assert_eq!(key_name(&json!({})).unwrap(), "console");
        assert_eq!(key_name(&json!({"name": " laptop "})).unwrap(), "laptop");
        assert!(key_name(&json!({"name": ""})).is_err());
        assert!(key_name(&json!({"name": 3})).is_err());
        assert!(key_name(&json!({"name": "a\nb"})).is_err());
        assert!(key_name(&json!({"name": "x".repeat(65)})).is_err());
    }
}
