//! Typed rows. Each `from_row` returns `rusqlite::Result<Result<T>>`: the outer error is
//! SQLite's, the inner one a row that violates the schema's contract (reported, never panicked).

use edge_model::{
    EncodingType, LiveEventState, LiveOutputState, OperationStatus, ProvisioningState, StreamingEndpointState,
    StreamingProtocol, Timestamp,
};
use rusqlite::Row;
use serde_json::Value;

use crate::{DbError, Result};

fn ts(s: String) -> Result<Timestamp> {
    Timestamp::parse(&s).ok_or_else(|| DbError::Corrupt(format!("bad timestamp {s:?}")))
}

fn json(s: String) -> Result<Value> {
    serde_json::from_str(&s).map_err(|e| DbError::Corrupt(format!("bad JSON: {e}")))
}

fn corrupt<E: std::fmt::Display>(e: E) -> DbError {
    DbError::Corrupt(e.to_string())
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub secret_sha256: [u8; 32],
    pub created: Timestamp,
    pub revoked: Option<Timestamp>,
}

impl ApiKeyRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let hash: Vec<u8> = r.get(2)?;
        let created: String = r.get(3)?;
        let revoked: Option<String> = r.get(4)?;
        let id: String = r.get(0)?;
        let name: String = r.get(1)?;
        Ok((|| {
            Ok(ApiKeyRow {
                id,
                name,
                secret_sha256: hash.try_into().map_err(|_| DbError::Corrupt("hash length".into()))?,
                created: ts(created)?,
                revoked: revoked.map(ts).transpose()?,
            })
        })())
    }
}

pub(crate) const LE_SELECT: &str = "SELECT id, name, location, tags, protocol, encoding_type, access_token, resource_state, provisioning_state, properties, created, last_modified FROM live_events";

#[derive(Debug, Clone)]
pub struct LiveEventRow {
    pub id: String,
    pub name: String,
    pub location: String,
    pub tags: Value,
    pub protocol: StreamingProtocol,
    pub encoding_type: EncodingType,
    pub access_token: String,
    pub state: LiveEventState,
    pub provisioning: ProvisioningState,
    /// The normalized `properties` document (without the read-only fields).
    pub properties: Value,
    pub created: Timestamp,
    pub last_modified: Timestamp,
}

impl LiveEventRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let cols: (String, String, String, String, String, String, String, String, String, String, String, String) = (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
        );
        Ok((|| {
            Ok(LiveEventRow {
                id: cols.0,
                name: cols.1,
                location: cols.2,
                tags: json(cols.3)?,
                protocol: StreamingProtocol::parse(&cols.4).map_err(corrupt)?,
                encoding_type: EncodingType::parse(&cols.5).map_err(corrupt)?,
                access_token: cols.6,
                state: LiveEventState::parse(&cols.7).map_err(corrupt)?,
                provisioning: ProvisioningState::parse(&cols.8).map_err(corrupt)?,
                properties: json(cols.9)?,
                created: ts(cols.10)?,
                last_modified: ts(cols.11)?,
            })
        })())
    }
}

pub(crate) const LO_SELECT: &str = "SELECT o.id, e.name, o.name, a.name, o.manifest_name, o.archive_window_ms, o.resource_state, o.provisioning_state, o.properties, o.created, o.last_modified FROM live_outputs o JOIN live_events e ON e.id = o.live_event_id JOIN assets a ON a.id = o.asset_id";

#[derive(Debug, Clone)]
pub struct LiveOutputRow {
    pub id: String,
    pub live_event_name: String,
    pub name: String,
    pub asset_name: String,
    pub manifest_name: String,
    pub archive_window_ms: i64,
    pub state: LiveOutputState,
    pub provisioning: ProvisioningState,
    pub properties: Value,
    pub created: Timestamp,
    pub last_modified: Timestamp,
}

impl LiveOutputRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let c: (String, String, String, String, String, i64, String, String, String, String, String) = (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
        );
        Ok((|| {
            Ok(LiveOutputRow {
                id: c.0,
                live_event_name: c.1,
                name: c.2,
                asset_name: c.3,
                manifest_name: c.4,
                archive_window_ms: c.5,
                state: LiveOutputState::parse(&c.6).map_err(corrupt)?,
                provisioning: ProvisioningState::parse(&c.7).map_err(corrupt)?,
                properties: json(c.8)?,
                created: ts(c.9)?,
                last_modified: ts(c.10)?,
            })
        })())
    }
}

pub(crate) const ASSET_SELECT: &str =
    "SELECT id, name, container, storage_account, manifest_name, properties, created, last_modified FROM assets";

#[derive(Debug, Clone)]
pub struct AssetRow {
    pub id: String,
    pub name: String,
    pub container: String,
    pub storage_account: String,
    pub manifest_name: Option<String>,
    pub properties: Value,
    pub created: Timestamp,
    pub last_modified: Timestamp,
}

impl AssetRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let c: (String, String, String, String, Option<String>, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
        Ok((|| {
            Ok(AssetRow {
                id: c.0,
                name: c.1,
                container: c.2,
                storage_account: c.3,
                manifest_name: c.4,
                properties: json(c.5)?,
                created: ts(c.6)?,
                last_modified: ts(c.7)?,
            })
        })())
    }
}

/// Comparison operators of the OData subset AMS supports on lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetCondition {
    Name(CmpOp, String),
    Created(CmpOp, Timestamp),
    AlternateId(CmpOp, String),
    AssetId(CmpOp, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssetOrder {
    #[default]
    NameAsc,
    NameDesc,
    CreatedAsc,
    CreatedDesc,
}

/// A typed asset list query (parsed from `$filter`/`$orderby`/`$top`/`$skiptoken`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetQuery {
    pub conditions: Vec<AssetCondition>,
    pub order: AssetOrder,
    pub limit: i64,
    pub offset: i64,
}

/// A resource whose whole content is its document (policies, filters).
#[derive(Debug, Clone)]
pub struct DocRow {
    pub name: String,
    pub properties: Value,
    pub created: Timestamp,
}

impl DocRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let c: (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok((|| Ok(DocRow { name: c.0, properties: json(c.1)?, created: ts(c.2)? }))())
    }
}

pub(crate) const LOC_SELECT: &str = "SELECT l.name, l.locator_id, a.name, l.policy_name, l.properties, l.created FROM streaming_locators l JOIN assets a ON a.id = l.asset_id";

#[derive(Debug, Clone)]
pub struct LocatorRow {
    pub name: String,
    pub locator_id: String,
    pub asset_name: String,
    pub policy_name: String,
    pub properties: Value,
    pub created: Timestamp,
}

impl LocatorRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let c: (String, String, String, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        Ok((|| {
            Ok(LocatorRow {
                name: c.0,
                locator_id: c.1,
                asset_name: c.2,
                policy_name: c.3,
                properties: json(c.4)?,
                created: ts(c.5)?,
            })
        })())
    }
}

pub(crate) const SE_SELECT: &str = "SELECT name, location, tags, resource_state, provisioning_state, properties, created, last_modified FROM streaming_endpoints";

#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub name: String,
    pub location: String,
    pub tags: Value,
    pub state: StreamingEndpointState,
    pub provisioning: ProvisioningState,
    pub properties: Value,
    pub created: Timestamp,
    pub last_modified: Timestamp,
}

impl EndpointRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let c: (String, String, String, String, String, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
        Ok((|| {
            Ok(EndpointRow {
                name: c.0,
                location: c.1,
                tags: json(c.2)?,
                state: StreamingEndpointState::parse(&c.3).map_err(corrupt)?,
                provisioning: ProvisioningState::parse(&c.4).map_err(corrupt)?,
                properties: json(c.5)?,
                created: ts(c.6)?,
                last_modified: ts(c.7)?,
            })
        })())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    LiveEvent,
    LiveOutput,
    StreamingEndpoint,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::LiveEvent => "liveEvent",
            OperationKind::LiveOutput => "liveOutput",
            OperationKind::StreamingEndpoint => "streamingEndpoint",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "liveEvent" => OperationKind::LiveEvent,
            "liveOutput" => OperationKind::LiveOutput,
            "streamingEndpoint" => OperationKind::StreamingEndpoint,
            _ => return Err(DbError::Corrupt(format!("operation kind {s:?}"))),
        })
    }
}

pub(crate) const OP_SELECT: &str =
    "SELECT id, kind, scope, resource, action, status, error_code, error_message, created, finished FROM operations";

#[derive(Debug, Clone)]
pub struct OperationRow {
    pub id: String,
    pub kind: OperationKind,
    /// Serialization scope: `le:<event key>` or `se:<endpoint key>`.
    pub scope: String,
    /// `Event` or `Event/Output` or `Endpoint`, in the client's spelling.
    pub resource: String,
    pub action: String,
    pub status: OperationStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created: Timestamp,
    pub finished: Option<Timestamp>,
}

impl OperationRow {
    pub fn new(kind: OperationKind, scope: String, resource: String, action: &str) -> Self {
        OperationRow {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            scope,
            resource,
            action: action.to_owned(),
            status: OperationStatus::InProgress,
            error_code: None,
            error_message: None,
            created: Timestamp::now(),
            finished: None,
        }
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let c: (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        ) = (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        );
        Ok((|| {
            Ok(OperationRow {
                id: c.0,
                kind: OperationKind::parse(&c.1)?,
                scope: c.2,
                resource: c.3,
                action: c.4,
                status: OperationStatus::parse(&c.5).map_err(corrupt)?,
                error_code: c.6,
                error_message: c.7,
                created: ts(c.8)?,
                finished: c.9.map(ts).transpose()?,
            })
        })())
    }
}

#[derive(Debug, Clone)]
pub struct StreamEventRow {
    pub time: Timestamp,
    pub event_type: String,
    pub level: String,
    pub data: Value,
}

impl StreamEventRow {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Self>> {
        let c: (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        Ok((|| Ok(StreamEventRow { time: ts(c.0)?, event_type: c.1, level: c.2, data: json(c.3)? }))())
    }
}
