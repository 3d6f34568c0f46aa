//! Request body parsing and typed field access with client-facing error messages that name
//! the offending field.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

pub fn parse_object(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("The request body is missing; send a JSON object."));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request body is not valid JSON: {e}."),
        )
    })?;
    if !v.is_object() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request body must be a JSON object.",
        ));
    }
    Ok(v)
}

/// Like [`parse_object`], but an empty body is an empty object (actions whose body is optional).
pub fn parse_optional_object(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    parse_object(body)
}

/// Field access on a JSON object, by dotted path for error messages.
pub struct Obj<'a> {
    pub path: String,
    pub map: Option<&'a Map<String, Value>>,
}

impl<'a> Obj<'a> {
    pub fn root(v: &'a Value, path: &str) -> ApiResult<Obj<'a>> {
        match v {
            Value::Object(m) => Ok(Obj { path: path.into(), map: Some(m) }),
            Value::Null => Ok(Obj { path: path.into(), map: None }),
            _ => Err(ApiError::invalid_parameter(format!("'{path}' must be an object."))),
        }
    }

    fn field_path(&self, k: &str) -> String {
        if self.path.is_empty() { k.to_owned() } else { format!("{}.{k}", self.path) }
    }

    /// The raw value, case-insensitively by key (ARM JSON property names are case-insensitive).
    pub fn raw(&self, k: &str) -> Option<&'a Value> {
        let m = self.map?;
        m.get(k)
            .or_else(|| m.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v))
            .filter(|v| !v.is_null())
    }

    pub fn obj(&self, k: &str) -> ApiResult<Obj<'a>> {
        let path = self.field_path(k);
        match self.raw(k) {
            None => Ok(Obj { path, map: None }),
            Some(Value::Object(m)) => Ok(Obj { path, map: Some(m) }),
            Some(_) => Err(ApiError::invalid_parameter(format!("'{path}' must be an object."))),
        }
    }

    pub fn present(&self) -> bool {
        self.map.is_some()
    }

    pub fn str(&self, k: &str) -> ApiResult<Option<&'a str>> {
        match self.raw(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid_parameter(format!("'{}' must be a string.", self.field_path(k)))),
        }
    }

    pub fn req_str(&self, k: &str) -> ApiResult<&'a str> {
        self.str(k)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid_parameter(format!("'{}' is required.", self.field_path(k))))
    }

    pub fn bool(&self, k: &str) -> ApiResult<Option<bool>> {
        match self.raw(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid_parameter(format!("'{}' must be true or false.", self.field_path(k)))),
        }
    }

    pub fn i64(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.raw(k) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .map(Some)
                .ok_or_else(|| ApiError::invalid_parameter(format!("'{}' must be an integer.", self.field_path(k)))),
        }
    }

    pub fn array(&self, k: &str) -> ApiResult<Option<&'a Vec<Value>>> {
        match self.raw(k) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(ApiError::invalid_parameter(format!("'{}' must be an array.", self.field_path(k)))),
        }
    }

    pub fn string_map(&self, k: &str) -> ApiResult<Map<String, Value>> {
        match self.raw(k) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => {
                if let Some((key, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                    return Err(ApiError::invalid_parameter(format!(
                        "'{}.{key}' must be a string.",
                        self.field_path(k)
                    )));
                }
                Ok(m.clone())
            }
            Some(_) => {
                Err(ApiError::invalid_parameter(format!("'{}' must be an object of strings.", self.field_path(k))))
            }
        }
    }

    pub fn path_of(&self, k: &str) -> String {
        self.field_path(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_errors() {
        assert_eq!(parse_object(b"").unwrap_err().code, "BadRequest");
        assert_eq!(parse_object(b"{").unwrap_err().code, "InvalidRequestContent");
        assert_eq!(parse_object(b"[1]").unwrap_err().code, "InvalidRequestContent");
        assert!(parse_optional_object(b"  ").unwrap().is_object());
    }

    #[test]
    fn typed_fields_name_their_path() {
        let v = json!({"properties": {"input": {"streamingProtocol": 5}, "Description": "d"}});
        let root = Obj::root(&v, "").unwrap();
        let props = root.obj("properties").unwrap();
        assert_eq!(props.str("description").unwrap(), Some("d"));
        let e = props.obj("input").unwrap().str("streamingProtocol").unwrap_err();
        assert!(e.message.contains("properties.input.streamingProtocol"), "{}", e.message);
        assert!(props.obj("missing").unwrap().map.is_none());
    }
}
