//! The appliance database. This is the only crate that touches SQLite: the rest of the
//! appliance sees typed rows and typed errors.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a small pool of
//! reader connections, all in WAL mode so readers never wait for the writer. Calls are
//! synchronous and short (single-row lookups and updates); async callers run them on
//! `spawn_blocking`.

mod recording;
mod rows;
mod sync;
mod upgrade;

pub use recording::*;
pub use rows::*;
/// Re-exported so callers build documents without naming serde_json themselves.
pub use serde_json::Value as JsonValue;
pub use sync::*;

use std::path::Path;
use std::sync::Mutex;

use edge_model::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

/// The schema version this binary creates and understands.
pub const SCHEMA_VERSION: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A uniqueness or limit rule refused the change; the message is for the client.
    #[error("{0}")]
    Conflict(String),
    /// A referenced row does not exist; the message is for the client.
    #[error("{0}")]
    NotFound(String),
    /// The database is newer than this binary, or otherwise unusable.
    #[error("{0}")]
    Incompatible(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, DbError>;

pub struct Db {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // synchronous=FULL: a row the API acknowledged survives a power cut (WAL + FULL fsyncs the
    // log on every commit). The write rate is tiny, so the cost does not matter.
    // cache_size: 512 KiB (SQLite's default is 2 MiB). The writer appends to the recording index
    // all day; its hot pages are the right edge of a few B-trees, and a 2 MiB cache only fills
    // up with cold ones over hours (RSS creep; the OS page cache holds them anyway).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -512;",
    )
}

impl Db {
    /// Opens (creating or upgrading) the database at `path`.
    pub fn open(path: &Path, software_version: &str) -> Result<Db> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        upgrade::create_or_upgrade(&mut conn)?;
        conn.execute(
            "INSERT INTO opens (unix_time, software_version) VALUES (?1, ?2)",
            params![now_unix(), software_version],
        )?;
        let db = Db { writer: Mutex::new(conn), readers: Mutex::new(Vec::new()), path: path.to_owned() };
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // 512 KiB of page cache per reader (SQLite's default is 2 MiB): readers answer
                // point lookups; the recording index grows all day, and eight full caches would
                // be most of the appliance's memory.
                c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -512;")?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool poisoned");
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    fn with_tx<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().expect("writer poisoned");
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// A cheap liveness probe of the writer path, used by the health check and the watchdog.
    pub fn ping(&self) -> Result<()> {
        let conn = self.writer.lock().expect("writer poisoned");
        conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    // ---- meta -------------------------------------------------------------------------

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.with_reader(|c| {
            Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
    }

    /// Stores a value (replacing any).
    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Returns the stored value, inserting `make()` first if there is none (atomic).
    pub fn meta_get_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> Result<String> {
        self.with_tx(|tx| {
            if let Some(v) = tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()? {
                return Ok(v);
            }
            let v = make();
            tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![key, v])?;
            Ok(v)
        })
    }

    // ---- API keys ---------------------------------------------------------------------

    pub fn key_insert(&self, k: &ApiKeyRow) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT INTO api_keys (id, name, secret_sha256, created, revoked) VALUES (?1,?2,?3,?4,?5)",
                params![
                    k.id,
                    k.name,
                    k.secret_sha256.as_slice(),
                    k.created.to_string(),
                    k.revoked.map(|t| t.to_string())
                ],
            )
            .map_err(|e| unique_to_conflict(e, "An API key with this id already exists."))?;
            Ok(())
        })
    }

    pub fn key_get(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT id, name, secret_sha256, created, revoked FROM api_keys WHERE id = ?1",
                [id],
                ApiKeyRow::from_row,
            )
            .optional()?
            .transpose()
        })
    }

    pub fn key_list(&self) -> Result<Vec<ApiKeyRow>> {
        self.with_reader(|c| {
            let mut st =
                c.prepare("SELECT id, name, secret_sha256, created, revoked FROM api_keys ORDER BY created")?;
            let rows = st.query_map([], ApiKeyRow::from_row)?;
            rows.map(|r| r?).collect()
        })
    }

    /// Number of keys that are not revoked.
    pub fn key_count_valid(&self) -> Result<i64> {
        self.with_reader(|c| Ok(c.query_row("SELECT count(*) FROM api_keys WHERE revoked IS NULL", [], |r| r.get(0))?))
    }

    /// Revokes a key; returns false if no such valid key exists.
    pub fn key_revoke(&self, id: &str) -> Result<bool> {
        self.with_tx(|tx| {
            let n = tx.execute(
                "UPDATE api_keys SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
                params![id, Timestamp::now().to_string()],
            )?;
            Ok(n == 1)
        })
    }

    // ---- live events ------------------------------------------------------------------

    pub fn live_events(&self) -> Result<Vec<LiveEventRow>> {
        self.with_reader(|c| query_all(c, &format!("{LE_SELECT} ORDER BY created"), [], LiveEventRow::from_row))
    }

    pub fn live_event(&self, key: &str) -> Result<Option<LiveEventRow>> {
        self.with_reader(|c| query_one(c, &format!("{LE_SELECT} WHERE name_key = ?1"), [key], LiveEventRow::from_row))
    }

    pub fn live_event_by_token(&self, token: &str) -> Result<Option<LiveEventRow>> {
        self.with_reader(|c| {
            query_one(c, &format!("{LE_SELECT} WHERE access_token = ?1"), [token], LiveEventRow::from_row)
        })
    }

    /// Inserts a new live event together with its create operation (if any). A live event with
    /// the same name (case-insensitively) or the same access token is a conflict.
    pub fn live_event_insert(&self, ev: &LiveEventRow, op: Option<&OperationRow>) -> Result<()> {
        self.with_tx(|tx| {
            let taken: Option<String> = tx
                .query_row("SELECT name FROM live_events WHERE access_token = ?1", [&ev.access_token], |r| r.get(0))
                .optional()?;
            if let Some(other) = taken {
                return Err(DbError::Conflict(format!(
                    "The access token is already used by live event '{other}'; access tokens must be unique."
                )));
            }
            tx.execute(
                "INSERT INTO live_events (id, name, name_key, location, tags, protocol, encoding_type,
                    access_token, resource_state, provisioning_state, properties, created, last_modified)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                params![
                    ev.id,
                    ev.name,
                    ev.name.to_ascii_lowercase(),
                    ev.location,
                    ev.tags.to_string(),
                    ev.protocol.as_str(),
                    ev.encoding_type.as_str(),
                    ev.access_token,
                    ev.state.as_str(),
                    ev.provisioning.as_str(),
                    ev.properties.to_string(),
                    ev.created.to_string(),
                    ev.last_modified.to_string()
                ],
            )
            .map_err(|e| unique_to_conflict(e, &format!("A live event named '{}' already exists.", ev.name)))?;
            if let Some(op) = op {
                op_insert(tx, op)?;
            }
            Ok(())
        })
    }

    /// Replaces the client-editable parts of a live event (PUT on an existing one, PATCH).
    pub fn live_event_update_doc(&self, ev: &LiveEventRow) -> Result<()> {
        self.with_tx(|tx| {
            let n = tx.execute(
                "UPDATE live_events SET location = ?2, tags = ?3, properties = ?4, last_modified = ?5
                 WHERE name_key = ?1",
                params![
                    ev.name.to_ascii_lowercase(),
                    ev.location,
                    ev.tags.to_string(),
                    ev.properties.to_string(),
                    ev.last_modified.to_string()
                ],
            )?;
            if n == 0 {
                return Err(DbError::NotFound(format!("Live event '{}' was not found.", ev.name)));
            }
            Ok(())
        })
    }

    /// Starts a long-running operation on a live event: in one transaction, refuses it if
    /// another operation is in flight on the event (or its live outputs), moves the event to
    /// `during` and records the operation.
    pub fn live_event_begin_op(
        &self,
        key: &str,
        expected: edge_model::LiveEventState,
        during: edge_model::LiveEventState,
        op: &OperationRow,
    ) -> Result<LiveEventRow> {
        self.with_tx(|tx| {
            let ev = query_one(tx, &format!("{LE_SELECT} WHERE name_key = ?1"), [key], LiveEventRow::from_row)?
                .ok_or_else(|| DbError::NotFound(format!("Live event '{key}' was not found.")))?;
            if ev.state != expected {
                return Err(DbError::Conflict(format!(
                    "The live event '{}' changed state to {} meanwhile; retry.",
                    ev.name, ev.state
                )));
            }
            check_scope_idle(tx, &op.scope, &ev.name)?;
            tx.execute(
                "UPDATE live_events SET resource_state = ?2, provisioning_state = 'InProgress', last_modified = ?3 WHERE name_key = ?1",
                params![key, during.as_str(), Timestamp::now().to_string()],
            )?;
            op_insert(tx, op)?;
            Ok(LiveEventRow { state: during, provisioning: edge_model::ProvisioningState::InProgress, ..ev })
        })
    }

    /// Sets the state of a live event (and its provisioning state).
    pub fn live_event_set_state(
        &self,
        key: &str,
        state: edge_model::LiveEventState,
        provisioning: edge_model::ProvisioningState,
    ) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "UPDATE live_events SET resource_state = ?2, provisioning_state = ?3, last_modified = ?4 WHERE name_key = ?1",
                params![key, state.as_str(), provisioning.as_str(), Timestamp::now().to_string()],
            )?;
            Ok(())
        })
    }

    /// Deletes a live event; its live outputs go with it (the assets stay).
    pub fn live_event_delete(&self, key: &str) -> Result<bool> {
        self.with_tx(|tx| Ok(tx.execute("DELETE FROM live_events WHERE name_key = ?1", [key])? == 1))
    }

    // ---- live outputs -----------------------------------------------------------------

    pub fn live_outputs(&self, event_key: &str) -> Result<Vec<LiveOutputRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("{LO_SELECT} WHERE e.name_key = ?1 ORDER BY o.created"),
                [event_key],
                LiveOutputRow::from_row,
            )
        })
    }

    pub fn live_outputs_all(&self) -> Result<Vec<LiveOutputRow>> {
        self.with_reader(|c| query_all(c, &format!("{LO_SELECT} ORDER BY o.created"), [], LiveOutputRow::from_row))
    }

    pub fn live_output(&self, event_key: &str, key: &str) -> Result<Option<LiveOutputRow>> {
        self.with_reader(|c| {
            query_one(
                c,
                &format!("{LO_SELECT} WHERE e.name_key = ?1 AND o.name_key = ?2"),
                [event_key, key],
                LiveOutputRow::from_row,
            )
        })
    }

    /// Inserts a live output with its create operation, enforcing the per-event limit, the
    /// one-operation-at-a-time rule and that the asset exists; records the manifest name on the
    /// asset the first time, so its playback URLs never change afterwards.
    pub fn live_output_insert(
        &self,
        out: &LiveOutputRow,
        max_outputs: usize,
        op: &OperationRow,
    ) -> Result<LiveOutputRow> {
        self.with_tx(|tx| {
            let ev: Option<(String, String)> = tx
                .query_row("SELECT id, name FROM live_events WHERE name_key = ?1", [out.live_event_name.to_ascii_lowercase()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (event_id, event_name) = ev.ok_or_else(|| DbError::NotFound(format!("Live event '{}' was not found.", out.live_event_name)))?;
            let asset: Option<(String, String, Option<String>)> = tx
                .query_row("SELECT id, name, manifest_name FROM assets WHERE name_key = ?1", [out.asset_name.to_ascii_lowercase()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let (asset_id, asset_name, manifest) = asset.ok_or_else(|| {
                DbError::NotFound(format!("Asset '{}' was not found; create the asset before the live output.", out.asset_name))
            })?;
            let count: i64 = tx.query_row("SELECT count(*) FROM live_outputs WHERE live_event_id = ?1", [&event_id], |r| r.get(0))?;
            if count as usize >= max_outputs {
                return Err(DbError::Conflict(format!(
                    "Live event '{event_name}' already has {count} live output(s), the most its encoding type allows; delete one first."
                )));
            }
            let busy: Option<String> = tx
                .query_row("SELECT e.name FROM live_outputs o JOIN live_events e ON e.id = o.live_event_id WHERE o.asset_id = ?1", [&asset_id], |r| r.get(0))
                .optional()?;
            if let Some(other) = busy {
                return Err(DbError::Conflict(format!(
                    "Asset '{asset_name}' is already the target of a live output of live event '{other}'; use another asset."
                )));
            }
            let recorded: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM segments WHERE asset_id = ?1)", [&asset_id], |r| r.get(0))?;
            if recorded {
                // A finished recording is an immutable archive (and its VOD URLs are already
                // published): a new recording needs a new asset.
                return Err(DbError::Conflict(format!(
                    "Asset '{asset_name}' already holds a recording; create a new asset for this live output."
                )));
            }
            check_scope_idle(tx, &op.scope, &event_name)?;
            let manifest_name = match manifest {
                Some(m) => m,
                None => {
                    tx.execute("UPDATE assets SET manifest_name = ?2 WHERE id = ?1", params![asset_id, out.manifest_name])?;
                    out.manifest_name.clone()
                }
            };
            tx.execute(
                "INSERT INTO live_outputs (id, live_event_id, asset_id, name, name_key, manifest_name, archive_window_ms,
                    resource_state, provisioning_state, properties, created, last_modified)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                params![
                    out.id, event_id, asset_id, out.name, out.name.to_ascii_lowercase(), manifest_name,
                    out.archive_window_ms, out.state.as_str(), out.provisioning.as_str(),
                    out.properties.to_string(), out.created.to_string(), out.last_modified.to_string()
                ],
            )
            .map_err(|e| unique_to_conflict(e, &format!("A live output named '{}' already exists on this live event.", out.name)))?;
            op_insert(tx, op)?;
            Ok(LiveOutputRow { asset_name, manifest_name, live_event_name: event_name, ..out.clone() })
        })
    }

    pub fn live_output_set_state(
        &self,
        id: &str,
        state: edge_model::LiveOutputState,
        provisioning: edge_model::ProvisioningState,
    ) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "UPDATE live_outputs SET resource_state = ?2, provisioning_state = ?3, last_modified = ?4 WHERE id = ?1",
                params![id, state.as_str(), provisioning.as_str(), Timestamp::now().to_string()],
            )?;
            Ok(())
        })
    }

    /// Marks a live output Deleting and records the delete operation (one operation at a time).
    pub fn live_output_begin_delete(&self, out: &LiveOutputRow, op: &OperationRow) -> Result<()> {
        self.with_tx(|tx| {
            check_scope_idle(tx, &op.scope, &out.live_event_name)?;
            tx.execute(
                "UPDATE live_outputs SET resource_state = 'Deleting', provisioning_state = 'InProgress', last_modified = ?2 WHERE id = ?1",
                params![out.id, Timestamp::now().to_string()],
            )?;
            op_insert(tx, op)?;
            Ok(())
        })
    }

    pub fn live_output_delete(&self, id: &str) -> Result<bool> {
        self.with_tx(|tx| Ok(tx.execute("DELETE FROM live_outputs WHERE id = ?1", [id])? == 1))
    }

    // ---- assets -----------------------------------------------------------------------

    pub fn assets(&self, q: &AssetQuery) -> Result<Vec<AssetRow>> {
        let mut sql = format!("{ASSET_SELECT} WHERE 1=1");
        let mut args: Vec<String> = Vec::new();
        for cond in &q.conditions {
            let (col, op, val) = match cond {
                AssetCondition::Name(op, v) => ("name_key", op, v.to_ascii_lowercase()),
                AssetCondition::Created(op, t) => ("created", op, t.to_string()),
                AssetCondition::AlternateId(op, v) => ("json_extract(properties, '$.alternateId')", op, v.clone()),
                AssetCondition::AssetId(op, v) => ("id", op, v.to_ascii_lowercase()),
            };
            args.push(val);
            sql.push_str(&format!(" AND {col} {} ?{}", op.sql(), args.len()));
        }
        let (col, dir) = match q.order {
            AssetOrder::NameAsc => ("name_key", "ASC"),
            AssetOrder::NameDesc => ("name_key", "DESC"),
            AssetOrder::CreatedAsc => ("created", "ASC"),
            AssetOrder::CreatedDesc => ("created", "DESC"),
        };
        sql.push_str(&format!(" ORDER BY {col} {dir}, name_key {dir} LIMIT {} OFFSET {}", q.limit, q.offset));
        self.with_reader(|c| query_all(c, &sql, rusqlite::params_from_iter(args.iter()), AssetRow::from_row))
    }

    pub fn asset(&self, key: &str) -> Result<Option<AssetRow>> {
        self.with_reader(|c| query_one(c, &format!("{ASSET_SELECT} WHERE name_key = ?1"), [key], AssetRow::from_row))
    }

    pub fn asset_by_id(&self, id: &str) -> Result<Option<AssetRow>> {
        self.with_reader(|c| query_one(c, &format!("{ASSET_SELECT} WHERE id = ?1"), [id], AssetRow::from_row))
    }

    /// Creates or replaces an asset. Returns true if it was created.
    pub fn asset_upsert(&self, a: &AssetRow) -> Result<bool> {
        self.with_tx(|tx| {
            let n = tx.execute(
                "UPDATE assets SET properties = ?2, last_modified = ?3 WHERE name_key = ?1",
                params![a.name.to_ascii_lowercase(), a.properties.to_string(), a.last_modified.to_string()],
            )?;
            if n == 1 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO assets (id, name, name_key, container, storage_account, manifest_name, properties, created, last_modified)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                params![a.id, a.name, a.name.to_ascii_lowercase(), a.container, a.storage_account, a.manifest_name,
                        a.properties.to_string(), a.created.to_string(), a.last_modified.to_string()],
            )
            .map_err(|e| unique_to_conflict(e, "An asset with this assetId or container already exists."))?;
            Ok(true)
        })
    }

    /// Deletes an asset and its locators and filters. Refused while a live output records into it.
    /// `garbage`: the asset's recording directory, queued for removal in the same transaction.
    pub fn asset_delete(&self, key: &str, garbage: impl Fn(&str) -> String) -> Result<bool> {
        self.with_tx(|tx| {
            let used: Option<(String, String)> = tx
                .query_row(
                    "SELECT e.name, o.name FROM live_outputs o JOIN live_events e ON e.id = o.live_event_id
                     JOIN assets a ON a.id = o.asset_id WHERE a.name_key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((ev, out)) = used {
                return Err(DbError::Conflict(format!(
                    "The asset is being recorded by live output '{out}' of live event '{ev}'; delete the live output (or stop the live event) first."
                )));
            }
            let id: Option<String> = tx.query_row("SELECT id FROM assets WHERE name_key = ?1", [key], |r| r.get(0)).optional()?;
            let Some(id) = id else { return Ok(false) };
            tx.execute(
                "INSERT OR IGNORE INTO garbage (path, created) VALUES (?1, ?2)",
                params![garbage(&id), Timestamp::now().to_string()],
            )?;
            Ok(tx.execute("DELETE FROM assets WHERE id = ?1", [&id])? == 1)
        })
    }

    // ---- streaming policies -----------------------------------------------------------

    pub fn policies(&self) -> Result<Vec<DocRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                "SELECT name, properties, created FROM streaming_policies ORDER BY name_key",
                [],
                DocRow::from_row,
            )
        })
    }

    pub fn policy(&self, key: &str) -> Result<Option<DocRow>> {
        self.with_reader(|c| {
            query_one(
                c,
                "SELECT name, properties, created FROM streaming_policies WHERE name_key = ?1",
                [key],
                DocRow::from_row,
            )
        })
    }

    pub fn policy_insert(&self, p: &DocRow) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT INTO streaming_policies (name, name_key, properties, created) VALUES (?1,?2,?3,?4)",
                params![p.name, p.name.to_ascii_lowercase(), p.properties.to_string(), p.created.to_string()],
            )
            .map_err(|e| {
                unique_to_conflict(
                    e,
                    &format!(
                        "A streaming policy named '{}' already exists; streaming policies cannot be updated.",
                        p.name
                    ),
                )
            })?;
            Ok(())
        })
    }

    pub fn policy_delete(&self, key: &str) -> Result<bool> {
        self.with_tx(|tx| {
            let used: Option<String> = tx
                .query_row("SELECT name FROM streaming_locators WHERE lower(policy_name) = ?1 LIMIT 1", [key], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(loc) = used {
                return Err(DbError::Conflict(format!(
                    "The streaming policy is used by streaming locator '{loc}'; delete the locator first."
                )));
            }
            Ok(tx.execute("DELETE FROM streaming_policies WHERE name_key = ?1", [key])? == 1)
        })
    }

    // ---- streaming locators -----------------------------------------------------------

    pub fn locators(&self, limit: i64, offset: i64) -> Result<Vec<LocatorRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("{LOC_SELECT} ORDER BY l.created, l.name_key LIMIT ?1 OFFSET ?2"),
                [limit, offset],
                LocatorRow::from_row,
            )
        })
    }

    pub fn locators_for_asset(&self, asset_key: &str) -> Result<Vec<LocatorRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("{LOC_SELECT} WHERE a.name_key = ?1 ORDER BY l.created"),
                [asset_key],
                LocatorRow::from_row,
            )
        })
    }

    pub fn locator(&self, key: &str) -> Result<Option<LocatorRow>> {
        self.with_reader(|c| query_one(c, &format!("{LOC_SELECT} WHERE l.name_key = ?1"), [key], LocatorRow::from_row))
    }

    pub fn locator_by_id(&self, locator_id: &str) -> Result<Option<LocatorRow>> {
        self.with_reader(|c| {
            query_one(c, &format!("{LOC_SELECT} WHERE l.locator_id = ?1"), [locator_id], LocatorRow::from_row)
        })
    }

    /// Creates a locator. Locators are immutable: an existing name is a conflict.
    pub fn locator_insert(&self, l: &LocatorRow) -> Result<LocatorRow> {
        self.with_tx(|tx| {
            let asset: Option<(String, String)> = tx
                .query_row("SELECT id, name FROM assets WHERE name_key = ?1", [l.asset_name.to_ascii_lowercase()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (asset_id, asset_name) = asset.ok_or_else(|| DbError::NotFound(format!("Asset '{}' was not found.", l.asset_name)))?;
            let exists: bool = tx.query_row("SELECT count(*) FROM streaming_locators WHERE name_key = ?1", [l.name.to_ascii_lowercase()], |r| r.get::<_, i64>(0))? > 0;
            if exists {
                return Err(DbError::Conflict(format!(
                    "A streaming locator named '{}' already exists; streaming locators cannot be updated (delete it and create it again).",
                    l.name
                )));
            }
            tx.execute(
                "INSERT INTO streaming_locators (name, name_key, locator_id, asset_id, policy_name, properties, created)
                 VALUES (?1,?2,?3,?4,?5,?6,?7)",
                params![l.name, l.name.to_ascii_lowercase(), l.locator_id, asset_id, l.policy_name, l.properties.to_string(), l.created.to_string()],
            )
            .map_err(|e| unique_to_conflict(e, &format!("The streamingLocatorId '{}' is already used by another streaming locator.", l.locator_id)))?;
            Ok(LocatorRow { asset_name, ..l.clone() })
        })
    }

    pub fn locator_delete(&self, key: &str) -> Result<bool> {
        self.with_tx(|tx| Ok(tx.execute("DELETE FROM streaming_locators WHERE name_key = ?1", [key])? == 1))
    }

    // ---- streaming endpoints ----------------------------------------------------------

    pub fn endpoints(&self) -> Result<Vec<EndpointRow>> {
        self.with_reader(|c| query_all(c, &format!("{SE_SELECT} ORDER BY created"), [], EndpointRow::from_row))
    }

    pub fn endpoint(&self, key: &str) -> Result<Option<EndpointRow>> {
        self.with_reader(|c| query_one(c, &format!("{SE_SELECT} WHERE name_key = ?1"), [key], EndpointRow::from_row))
    }

    /// Inserts the endpoint if no endpoint of that name exists (used to seed `default`).
    pub fn endpoint_ensure(&self, e: &EndpointRow) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO streaming_endpoints (name, name_key, location, tags, resource_state, provisioning_state, properties, created, last_modified)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                params![e.name, e.name.to_ascii_lowercase(), e.location, e.tags.to_string(), e.state.as_str(), e.provisioning.as_str(),
                        e.properties.to_string(), e.created.to_string(), e.last_modified.to_string()],
            )?;
            Ok(())
        })
    }

    /// Creates or updates an endpoint's document and records the operation; returns true if created.
    pub fn endpoint_put(&self, e: &EndpointRow, op: &OperationRow) -> Result<bool> {
        self.with_tx(|tx| {
            check_scope_idle(tx, &op.scope, &e.name)?;
            let n = tx.execute(
                "UPDATE streaming_endpoints SET location = ?2, tags = ?3, properties = ?4, last_modified = ?5, provisioning_state = 'InProgress' WHERE name_key = ?1",
                params![e.name.to_ascii_lowercase(), e.location, e.tags.to_string(), e.properties.to_string(), e.last_modified.to_string()],
            )?;
            let created = n == 0;
            if created {
                tx.execute(
                    "INSERT INTO streaming_endpoints (name, name_key, location, tags, resource_state, provisioning_state, properties, created, last_modified)
                     VALUES (?1,?2,?3,?4,?5,'InProgress',?6,?7,?8)",
                    params![e.name, e.name.to_ascii_lowercase(), e.location, e.tags.to_string(), e.state.as_str(),
                            e.properties.to_string(), e.created.to_string(), e.last_modified.to_string()],
                )?;
            }
            op_insert(tx, op)?;
            Ok(created)
        })
    }

    /// Moves an endpoint to an intermediate state and records the operation.
    pub fn endpoint_begin_op(
        &self,
        key: &str,
        during: edge_model::StreamingEndpointState,
        op: &OperationRow,
    ) -> Result<()> {
        self.with_tx(|tx| {
            check_scope_idle(tx, &op.scope, key)?;
            let n = tx.execute(
                "UPDATE streaming_endpoints SET resource_state = ?2, provisioning_state = 'InProgress', last_modified = ?3 WHERE name_key = ?1",
                params![key, during.as_str(), Timestamp::now().to_string()],
            )?;
            if n == 0 {
                return Err(DbError::NotFound(format!("Streaming endpoint '{key}' was not found.")));
            }
            op_insert(tx, op)?;
            Ok(())
        })
    }

    pub fn endpoint_set(
        &self,
        key: &str,
        state: edge_model::StreamingEndpointState,
        properties: Option<&Value>,
    ) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "UPDATE streaming_endpoints SET resource_state = ?2, provisioning_state = 'Succeeded', last_modified = ?3,
                    properties = coalesce(?4, properties) WHERE name_key = ?1",
                params![key, state.as_str(), Timestamp::now().to_string(), properties.map(|p| p.to_string())],
            )?;
            Ok(())
        })
    }

    pub fn endpoint_delete(&self, key: &str) -> Result<bool> {
        self.with_tx(|tx| Ok(tx.execute("DELETE FROM streaming_endpoints WHERE name_key = ?1", [key])? == 1))
    }

    // ---- filters ----------------------------------------------------------------------

    pub fn filters(&self, asset_id: Option<&str>) -> Result<Vec<DocRow>> {
        self.with_reader(|c| {
            query_all(c, "SELECT name, properties, created FROM filters WHERE coalesce(asset_id,'') = coalesce(?1,'') ORDER BY name_key", [asset_id], DocRow::from_row)
        })
    }

    pub fn filter(&self, asset_id: Option<&str>, key: &str) -> Result<Option<DocRow>> {
        self.with_reader(|c| {
            query_one(c, "SELECT name, properties, created FROM filters WHERE coalesce(asset_id,'') = coalesce(?1,'') AND name_key = ?2", params![asset_id, key], DocRow::from_row)
        })
    }

    /// Creates or replaces a filter; returns true if created.
    pub fn filter_upsert(&self, asset_id: Option<&str>, f: &DocRow) -> Result<bool> {
        self.with_tx(|tx| {
            let n = tx.execute(
                "UPDATE filters SET properties = ?3 WHERE coalesce(asset_id,'') = coalesce(?1,'') AND name_key = ?2",
                params![asset_id, f.name.to_ascii_lowercase(), f.properties.to_string()],
            )?;
            if n == 1 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO filters (asset_id, name, name_key, properties, created) VALUES (?1,?2,?3,?4,?5)",
                params![asset_id, f.name, f.name.to_ascii_lowercase(), f.properties.to_string(), f.created.to_string()],
            )?;
            Ok(true)
        })
    }

    pub fn filter_delete(&self, asset_id: Option<&str>, key: &str) -> Result<bool> {
        self.with_tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM filters WHERE coalesce(asset_id,'') = coalesce(?1,'') AND name_key = ?2",
                params![asset_id, key],
            )? == 1)
        })
    }

    // ---- operations -------------------------------------------------------------------

    pub fn operation(&self, id: &str) -> Result<Option<OperationRow>> {
        self.with_reader(|c| query_one(c, &format!("{OP_SELECT} WHERE id = ?1"), [id], OperationRow::from_row))
    }

    pub fn operations_in_flight(&self) -> Result<Vec<OperationRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("{OP_SELECT} WHERE status = 'InProgress' ORDER BY created"),
                [],
                OperationRow::from_row,
            )
        })
    }

    pub fn operation_finish(
        &self,
        id: &str,
        status: edge_model::OperationStatus,
        error: Option<(&str, &str)>,
    ) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "UPDATE operations SET status = ?2, error_code = ?3, error_message = ?4, finished = ?5 WHERE id = ?1",
                params![id, status.as_str(), error.map(|e| e.0), error.map(|e| e.1), Timestamp::now().to_string()],
            )?;
            Ok(())
        })
    }

    /// Records an operation that needs no state change of its own (e.g. an already-satisfied
    /// action), still refusing it while another is in flight on the same scope.
    pub fn operation_insert(&self, op: &OperationRow) -> Result<()> {
        self.with_tx(|tx| {
            check_scope_idle(tx, &op.scope, &op.resource)?;
            op_insert(tx, op)
        })
    }

    /// Removes finished operations older than `before` (they are only needed while clients poll).
    pub fn operations_prune(&self, before: Timestamp) -> Result<usize> {
        self.with_tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM operations WHERE status != 'InProgress' AND created < ?1",
                [before.to_string()],
            )?)
        })
    }

    // ---- stream events ----------------------------------------------------------------

    pub fn stream_event_append(&self, live_event_id: &str, e: &StreamEventRow, keep: i64) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT INTO stream_events (live_event_id, event_time, event_type, event_level, data) VALUES (?1,?2,?3,?4,?5)",
                params![live_event_id, e.time.to_string(), e.event_type, e.level, e.data.to_string()],
            )?;
            tx.execute(
                "DELETE FROM stream_events WHERE live_event_id = ?1 AND id <= (SELECT max(id) - ?2 FROM stream_events WHERE live_event_id = ?1)",
                params![live_event_id, keep],
            )?;
            Ok(())
        })
    }

    /// The newest `limit` stream events of a live event, oldest first.
    pub fn stream_events(&self, live_event_id: &str, limit: i64) -> Result<Vec<StreamEventRow>> {
        self.with_reader(|c| {
            let mut v = query_all(
                c,
                "SELECT event_time, event_type, event_level, data FROM stream_events WHERE live_event_id = ?1 ORDER BY id DESC LIMIT ?2",
                params![live_event_id, limit],
                StreamEventRow::from_row,
            )?;
            v.reverse();
            Ok(v)
        })
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn unique_to_conflict(e: rusqlite::Error, msg: &str) -> DbError {
    match &e {
        // Only a duplicate is a conflict; a CHECK or NOT NULL failure is a bug to report as such.
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            DbError::Conflict(msg.to_owned())
        }
        _ => DbError::Sqlite(e),
    }
}

fn check_scope_idle(tx: &rusqlite::Transaction<'_>, scope: &str, what: &str) -> Result<()> {
    let busy: Option<(String, String)> = tx
        .query_row(
            "SELECT action, resource FROM operations WHERE scope = ?1 AND status = 'InProgress' LIMIT 1",
            [scope],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((action, resource)) = busy {
        return Err(DbError::Conflict(format!(
            "Another operation ({action} of '{resource}') is in progress on '{what}'; only one operation at a time is allowed. Retry when it completes."
        )));
    }
    Ok(())
}

fn op_insert(tx: &rusqlite::Transaction<'_>, op: &OperationRow) -> Result<()> {
    tx.execute(
        "INSERT INTO operations (id, kind, scope, resource, action, status, error_code, error_message, created, finished)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
        params![op.id, op.kind.as_str(), op.scope, op.resource, op.action, op.status.as_str(),
                op.error_code, op.error_message, op.created.to_string(), op.finished.map(|t| t.to_string())],
    )?;
    Ok(())
}

pub(crate) fn query_all<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    p: P,
    f: fn(&rusqlite::Row<'_>) -> rusqlite::Result<Result<T>>,
) -> Result<Vec<T>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(p, f)?;
    rows.map(|r| r?).collect()
}

pub(crate) fn query_one<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    p: P,
    f: fn(&rusqlite::Row<'_>) -> rusqlite::Result<Result<T>>,
) -> Result<Option<T>> {
    let mut st = c.prepare_cached(sql)?;
    st.query_row(p, f).optional()?.transpose()
}
