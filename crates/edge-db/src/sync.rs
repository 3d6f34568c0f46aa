//! The archive sync outbox: one job per asset, one row per object of its cloud copy
//! (docs/design/sync.md). The worker in `edge-sync` drives the state machine; the API reads it.

use edge_model::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::{Db, DbError, Result, query_all};

/// The state of an asset's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Queued (or waiting for its next attempt after a failure).
    Pending,
    /// A worker pass is copying it.
    Uploading,
    /// Every object is in the target.
    Synced,
    /// Gave up (a permanent error, e.g. the storage account is no longer configured); `retry`
    /// queues it again.
    Failed,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::Uploading => "uploading",
            SyncState::Synced => "synced",
            SyncState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<SyncState> {
        Some(match s {
            "pending" => SyncState::Pending,
            "uploading" => SyncState::Uploading,
            "synced" => SyncState::Synced,
            "failed" => SyncState::Failed,
            _ => return None,
        })
    }
}

/// The state of one object of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    Pending,
    /// Parts are being committed (`upload_id` and `parts` say how far).
    Uploading,
    Done,
    Failed,
}

impl ObjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Pending => "pending",
            ObjectState::Uploading => "uploading",
            ObjectState::Done => "done",
            ObjectState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<ObjectState> {
        Some(match s {
            "pending" => ObjectState::Pending,
            "uploading" => ObjectState::Uploading,
            "done" => ObjectState::Done,
            "failed" => ObjectState::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncJobRow {
    pub asset_id: String,
    /// The asset's name and container (joined in for the API and the object keys).
    pub asset_name: String,
    pub container: String,
    pub storage: String,
    pub state: SyncState,
    pub live: bool,
    pub bytes_total: i64,
    pub bytes_done: i64,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub synced_at: Option<Timestamp>,
    pub evicted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncObjectRow {
    pub asset_id: String,
    pub key: String,
    pub source: Option<String>,
    pub size: i64,
    pub md5: Option<String>,
    pub state: ObjectState,
    pub bytes_done: i64,
    pub upload_id: Option<String>,
    /// Committed part ids, in order.
    pub parts: Vec<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// An object a pass wants in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedObject {
    pub key: String,
    pub source: Option<String>,
    pub size: i64,
    /// Known in advance for generated manifests: a changed manifest is uploaded again.
    pub md5: Option<String>,
}

fn ts_opt(s: Option<String>) -> rusqlite::Result<Option<Timestamp>> {
    s.map(|s| {
        Timestamp::parse(&s)
            .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "timestamp".into(), rusqlite::types::Type::Text))
    })
    .transpose()
}

const JOB_COLS: &str = "j.asset_id, a.name, a.container, j.storage, j.state, j.live, j.bytes_total, j.bytes_done, j.attempts, j.next_attempt_at, j.last_error, j.created, j.updated, j.synced_at, j.evicted_at";
const OBJ_COLS: &str = "asset_id, key, source, size, md5, state, bytes_done, upload_id, parts, attempts, last_error";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SyncJobRow>> {
    let state: String = r.get(4)?;
    let Some(state) = SyncState::parse(&state) else {
        return Ok(Err(DbError::Corrupt(format!("sync job state '{state}'"))));
    };
    Ok(Ok(SyncJobRow {
        asset_id: r.get(0)?,
        asset_name: r.get(1)?,
        container: r.get(2)?,
        storage: r.get(3)?,
        state,
        live: r.get(5)?,
        bytes_total: r.get(6)?,
        bytes_done: r.get(7)?,
        attempts: r.get(8)?,
        next_attempt_at: ts_opt(r.get(9)?)?,
        last_error: r.get(10)?,
        created: ts_opt(r.get(11)?)?.unwrap_or(Timestamp(time::OffsetDateTime::UNIX_EPOCH)),
        updated: ts_opt(r.get(12)?)?.unwrap_or(Timestamp(time::OffsetDateTime::UNIX_EPOCH)),
        synced_at: ts_opt(r.get(13)?)?,
        evicted_at: ts_opt(r.get(14)?)?,
    }))
}

fn obj_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SyncObjectRow>> {
    let state: String = r.get(5)?;
    let Some(state) = ObjectState::parse(&state) else {
        return Ok(Err(DbError::Corrupt(format!("sync object state '{state}'"))));
    };
    let parts: String = r.get(8)?;
    let Ok(parts) = serde_json::from_str::<Vec<String>>(&parts) else {
        return Ok(Err(DbError::Corrupt(format!("sync object parts '{parts}'"))));
    };
    Ok(Ok(SyncObjectRow {
        asset_id: r.get(0)?,
        key: r.get(1)?,
        source: r.get(2)?,
        size: r.get(3)?,
        md5: r.get(4)?,
        state,
        bytes_done: r.get(6)?,
        upload_id: r.get(7)?,
        parts,
        attempts: r.get(9)?,
        last_error: r.get(10)?,
    }))
}

impl Db {
    /// Queues an asset's archive for `storage`. A queued job is (re)opened: new files are
    /// picked up by the next pass; objects already copied are not copied again. `live`: the
    /// event still records (segments go up as they come; manifests once it ends).
    pub fn sync_enqueue(&self, asset_id: &str, storage: &str, live: bool) -> Result<()> {
        let now = Timestamp::now().to_string();
        self.with_tx(|tx| {
            let exists: Option<String> = tx
                .query_row("SELECT state FROM sync_jobs WHERE asset_id = ?1", [asset_id], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                tx.execute(
                    "UPDATE sync_jobs SET state = 'pending', live = ?2, attempts = 0, next_attempt_at = NULL, last_error = NULL, updated = ?3 WHERE asset_id = ?1",
                    params![asset_id, live, now],
                )?;
                // Objects that failed are tried again with the job.
                tx.execute(
                    "UPDATE sync_objects SET state = 'pending', bytes_done = 0, upload_id = NULL, parts = '[]', attempts = 0, last_error = NULL WHERE asset_id = ?1 AND state = 'failed'",
                    [asset_id],
                )?;
            } else {
                tx.execute(
                    "INSERT INTO sync_jobs (asset_id, storage, state, live, created, updated) VALUES (?1, ?2, 'pending', ?3, ?4, ?4)",
                    params![asset_id, storage, live, now],
                )
                .map_err(|e| match &e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        DbError::NotFound(format!("no asset with id {asset_id}"))
                    }
                    _ => DbError::Sqlite(e),
                })?;
            }
            Ok(())
        })
    }

    pub fn sync_job(&self, asset_id: &str) -> Result<Option<SyncJobRow>> {
        self.with_reader(|c| {
            crate::query_one(
                c,
                &format!("SELECT {JOB_COLS} FROM sync_jobs j JOIN assets a ON a.id = j.asset_id WHERE j.asset_id = ?1"),
                [asset_id],
                job_row,
            )
        })
    }

    /// Every job, oldest first.
    pub fn sync_jobs(&self) -> Result<Vec<SyncJobRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("SELECT {JOB_COLS} FROM sync_jobs j JOIN assets a ON a.id = j.asset_id ORDER BY j.created, j.asset_id"),
                [],
                job_row,
            )
        })
    }

    /// Jobs with work to do at `now`: pending or uploading, their backoff elapsed.
    pub fn sync_jobs_due(&self, now: Timestamp) -> Result<Vec<SyncJobRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!(
                    "SELECT {JOB_COLS} FROM sync_jobs j JOIN assets a ON a.id = j.asset_id
                     WHERE j.state IN ('pending','uploading') AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= ?1)
                     ORDER BY j.live DESC, j.created"
                ),
                [now.to_string()],
                job_row,
            )
        })
    }

    /// The earliest backoff deadline of a waiting job, to sleep until then.
    pub fn sync_next_deadline(&self) -> Result<Option<Timestamp>> {
        self.with_reader(|c| {
            let s: Option<String> = c.query_row(
                "SELECT min(next_attempt_at) FROM sync_jobs WHERE state IN ('pending','uploading') AND next_attempt_at IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            Ok(s.and_then(|s| Timestamp::parse(&s)))
        })
    }

    /// Records what a pass wants in the target. New objects are added as pending; a
    /// generated manifest whose content changed goes back to pending; copied objects stay
    /// copied (keys are immutable: a segment never changes once written).
    pub fn sync_plan(&self, asset_id: &str, objects: &[PlannedObject]) -> Result<()> {
        self.with_tx(|tx| {
            let mut ins = tx.prepare_cached(
                "INSERT INTO sync_objects (asset_id, key, source, size, md5, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')
                 ON CONFLICT (asset_id, key) DO UPDATE SET
                   size = excluded.size, md5 = excluded.md5, state = 'pending', bytes_done = 0, upload_id = NULL, parts = '[]', attempts = 0, last_error = NULL
                 WHERE excluded.source IS NULL AND sync_objects.md5 IS NOT excluded.md5",
            )?;
            for o in objects {
                ins.execute(params![asset_id, o.key, o.source, o.size, o.md5])?;
            }
            let total: i64 =
                tx.query_row("SELECT coalesce(sum(size), 0) FROM sync_objects WHERE asset_id = ?1", [asset_id], |r| {
                    r.get(0)
                })?;
            let done: i64 = tx.query_row(
                "SELECT coalesce(sum(CASE WHEN state = 'done' THEN size ELSE bytes_done END), 0) FROM sync_objects WHERE asset_id = ?1",
                [asset_id],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE sync_jobs SET bytes_total = ?2, bytes_done = ?3, updated = ?4 WHERE asset_id = ?1",
                params![asset_id, total, done, Timestamp::now().to_string()],
            )?;
            Ok(())
        })
    }

    pub fn sync_objects(&self, asset_id: &str) -> Result<Vec<SyncObjectRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("SELECT {OBJ_COLS} FROM sync_objects WHERE asset_id = ?1 ORDER BY source IS NULL, key"),
                [asset_id],
                obj_row,
            )
        })
    }

    /// The objects of a job still to upload (pending or uploading), files before manifests.
    pub fn sync_objects_todo(&self, asset_id: &str) -> Result<Vec<SyncObjectRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!(
                    "SELECT {OBJ_COLS} FROM sync_objects WHERE asset_id = ?1 AND state IN ('pending','uploading') ORDER BY source IS NULL, key"
                ),
                [asset_id],
                obj_row,
            )
        })
    }

    /// Stores an object's progress (after each committed part, and at its end) and the job's
    /// byte count with it, in one transaction.
    pub fn sync_object_update(&self, o: &SyncObjectRow) -> Result<()> {
        self.with_tx(|tx| {
            let parts = serde_json::to_string(&o.parts).expect("strings serialize");
            let n = tx.execute(
                "UPDATE sync_objects SET size = ?3, md5 = ?4, state = ?5, bytes_done = ?6, upload_id = ?7, parts = ?8, attempts = ?9, last_error = ?10
                 WHERE asset_id = ?1 AND key = ?2",
                params![o.asset_id, o.key, o.size, o.md5, o.state.as_str(), o.bytes_done, o.upload_id, parts, o.attempts, o.last_error],
            )?;
            if n == 0 {
                return Err(DbError::NotFound(format!("sync object {}/{} is gone", o.asset_id, o.key)));
            }
            tx.execute(
                "UPDATE sync_jobs SET bytes_done = (SELECT coalesce(sum(CASE WHEN state = 'done' THEN size ELSE bytes_done END), 0) FROM sync_objects WHERE asset_id = ?1),
                   updated = ?2 WHERE asset_id = ?1",
                params![o.asset_id, Timestamp::now().to_string()],
            )?;
            Ok(())
        })
    }

    /// [`Db::sync_object_update`] for many objects of one job in one transaction (one fsync):
    /// the final states of small objects, whose loss in a crash only means sending them again.
    pub fn sync_objects_update(&self, rows: &[SyncObjectRow]) -> Result<()> {
        let Some(first) = rows.first() else { return Ok(()) };
        self.with_tx(|tx| {
            let mut st = tx.prepare_cached(
                "UPDATE sync_objects SET size = ?3, md5 = ?4, state = ?5, bytes_done = ?6, upload_id = ?7, parts = ?8, attempts = ?9, last_error = ?10
                 WHERE asset_id = ?1 AND key = ?2",
            )?;
            for o in rows {
                let parts = serde_json::to_string(&o.parts).expect("strings serialize");
                st.execute(params![o.asset_id, o.key, o.size, o.md5, o.state.as_str(), o.bytes_done, o.upload_id, parts, o.attempts, o.last_error])?;
            }
            tx.execute(
                "UPDATE sync_jobs SET bytes_done = (SELECT coalesce(sum(CASE WHEN state = 'done' THEN size ELSE bytes_done END), 0) FROM sync_objects WHERE asset_id = ?1),
                   updated = ?2 WHERE asset_id = ?1",
                params![first.asset_id, Timestamp::now().to_string()],
            )?;
            Ok(())
        })
    }

    /// Moves a job to `state`. `error` and `next_attempt_at` are stored as given (None clears
    /// them); `attempts` is the count of consecutive failed passes.
    pub fn sync_job_set(
        &self,
        asset_id: &str,
        state: SyncState,
        attempts: i64,
        next_attempt_at: Option<Timestamp>,
        error: Option<&str>,
    ) -> Result<()> {
        self.with_tx(|tx| {
            let now = Timestamp::now().to_string();
            tx.execute(
                "UPDATE sync_jobs SET state = ?2, attempts = ?3, next_attempt_at = ?4, last_error = ?5, updated = ?6,
                   synced_at = CASE WHEN ?2 = 'synced' THEN ?6 ELSE synced_at END
                 WHERE asset_id = ?1",
                params![asset_id, state.as_str(), attempts, next_attempt_at.map(|t| t.to_string()), error, now],
            )?;
            Ok(())
        })
    }

    /// Queues a job again now: failed objects go back to pending; with `resync` every object
    /// does (the whole copy is uploaded again, over the same keys). Returns false if the asset
    /// has no job.
    pub fn sync_retry(&self, asset_id: &str, resync: bool) -> Result<bool> {
        self.with_tx(|tx| {
            let now = Timestamp::now().to_string();
            let n = tx.execute(
                "UPDATE sync_jobs SET state = 'pending', attempts = 0, next_attempt_at = NULL, last_error = NULL, updated = ?2 WHERE asset_id = ?1",
                params![asset_id, now],
            )?;
            if n == 0 {
                return Ok(false);
            }
            let filter = if resync { "" } else { " AND state = 'failed'" };
            tx.execute(
                &format!(
                    "UPDATE sync_objects SET state = 'pending', bytes_done = 0, upload_id = NULL, parts = '[]', attempts = 0, last_error = NULL WHERE asset_id = ?1{filter}"
                ),
                [asset_id],
            )?;
            Ok(true)
        })
    }

    /// Synced archives whose local copy can go, oldest copy first: synced, not evicted yet,
    /// and not recorded into by a live output.
    pub fn sync_evictable(&self) -> Result<Vec<SyncJobRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!(
                    "SELECT {JOB_COLS} FROM sync_jobs j JOIN assets a ON a.id = j.asset_id
                     WHERE j.state = 'synced' AND j.evicted_at IS NULL
                       AND NOT EXISTS (SELECT 1 FROM live_outputs o WHERE o.asset_id = j.asset_id)
                     ORDER BY j.synced_at, j.created"
                ),
                [],
                job_row,
            )
        })
    }

    /// Removes the local copy of a synced archive: in one transaction its recording rows go
    /// and its directory is queued in the garbage table (the caller then removes it, as for
    /// an asset deletion). Refused (false) unless the job is synced and nothing records into
    /// the asset, re-checked inside the transaction.
    pub fn sync_evict(&self, asset_id: &str, garbage: &str) -> Result<bool> {
        self.with_tx(|tx| {
            let ok: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sync_jobs WHERE asset_id = ?1 AND state = 'synced' AND evicted_at IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM live_outputs WHERE asset_id = ?1)",
                [asset_id],
                |r| r.get(0),
            )?;
            if !ok {
                return Ok(false);
            }
            let now = Timestamp::now().to_string();
            for t in ["segments", "renditions", "periods", "recordings"] {
                tx.execute(&format!("DELETE FROM {t} WHERE asset_id = ?1"), [asset_id])?;
            }
            tx.execute("INSERT OR IGNORE INTO garbage (path, created) VALUES (?1, ?2)", params![garbage, now])?;
            tx.execute(
                "UPDATE sync_jobs SET evicted_at = ?2, updated = ?2 WHERE asset_id = ?1",
                params![asset_id, now],
            )?;
            Ok(true)
        })
    }

    /// Assets with a recording whose archive is not (completely) in its target: they must
    /// never be deleted by the disk policy. Returns their ids.
    pub fn sync_unsynced_assets(&self) -> Result<Vec<String>> {
        self.with_reader(|c| {
            query_all(
                c,
                "SELECT r.asset_id FROM recordings r LEFT JOIN sync_jobs j ON j.asset_id = r.asset_id
                 WHERE j.asset_id IS NULL OR j.state != 'synced' ORDER BY r.created",
                [],
                |r| Ok(Ok(r.get(0)?)),
            )
        })
    }

    /// Assets recorded by running live events whose events carry `tag` (value `live`): their
    /// archives are copied while they record. Returns (asset id, storage account name).
    pub fn sync_live_candidates(&self, tag: &str) -> Result<Vec<(String, String)>> {
        self.with_reader(|c| {
            query_all(
                c,
                "SELECT o.asset_id, a.storage_account FROM live_outputs o
                   JOIN live_events e ON e.id = o.live_event_id JOIN assets a ON a.id = o.asset_id
                 WHERE e.resource_state = 'Running' AND lower(coalesce(json_extract(e.tags, '$.' || ?1), '')) = 'live'",
                [tag],
                |r| Ok(Ok((r.get(0)?, r.get(1)?))),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AssetRow;

    fn db() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("edge-db-sync-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        (Db::open(&dir.join("db"), "t").unwrap(), dir)
    }

    fn asset(db: &Db, name: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let now = Timestamp::now();
        db.asset_upsert(&AssetRow {
            id: id.clone(),
            name: name.into(),
            container: format!("asset-{id}"),
            storage_account: String::new(),
            manifest_name: None,
            properties: serde_json::json!({}),
            created: now,
            last_modified: now,
        })
        .unwrap();
        id
    }

    fn obj(key: &str, source: Option<&str>, size: i64, md5: Option<&str>) -> PlannedObject {
        PlannedObject { key: key.into(), source: source.map(Into::into), size, md5: md5.map(Into::into) }
    }

    #[test]
    fn plan_progress_and_retry() {
        let (db, dir) = db();
        let a = asset(&db, "a1");
        assert!(matches!(db.sync_enqueue("nope", "s", false), Err(DbError::NotFound(_))));
        db.sync_enqueue(&a, "cloud", false).unwrap();
        let j = db.sync_job(&a).unwrap().unwrap();
        assert_eq!((j.state, j.storage.as_str(), j.asset_name.as_str()), (SyncState::Pending, "cloud", "a1"));
        db.sync_plan(
            &a,
            &[obj("p/video/0.m4s", Some("video/0.m4s"), 100, None), obj("p/index.m3u8", None, 10, Some("m1"))],
        )
        .unwrap();
        assert_eq!(db.sync_job(&a).unwrap().unwrap().bytes_total, 110);
        let mut o = db.sync_objects(&a).unwrap().remove(0);
        assert_eq!(o.key, "p/video/0.m4s");
        o.state = ObjectState::Uploading;
        o.upload_id = Some("u1".into());
        o.parts = vec!["b0".into()];
        o.bytes_done = 60;
        db.sync_object_update(&o).unwrap();
        assert_eq!(db.sync_job(&a).unwrap().unwrap().bytes_done, 60);
        let back = db.sync_objects(&a).unwrap().remove(0);
        assert_eq!((back.upload_id.as_deref(), back.parts.clone()), (Some("u1"), vec!["b0".to_string()]));
        o.state = ObjectState::Done;
        o.bytes_done = 100;
        db.sync_objects_update(std::slice::from_ref(&o)).unwrap();
        assert_eq!(db.sync_job(&a).unwrap().unwrap().bytes_done, 100);
        // Planning again keeps copied files copied; an unchanged manifest stays, a changed one
        // goes back to pending.
        db.sync_plan(
            &a,
            &[obj("p/video/0.m4s", Some("video/0.m4s"), 100, None), obj("p/index.m3u8", None, 10, Some("m1"))],
        )
        .unwrap();
        let objs = db.sync_objects(&a).unwrap();
        assert_eq!(objs[0].state, ObjectState::Done);
        let todo: Vec<String> = db.sync_objects_todo(&a).unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(todo, vec!["p/index.m3u8".to_string()]);
        let mut m = objs[1].clone();
        m.state = ObjectState::Done;
        db.sync_object_update(&m).unwrap();
        db.sync_plan(&a, &[obj("p/index.m3u8", None, 12, Some("m2"))]).unwrap();
        let m = db.sync_objects(&a).unwrap().remove(1);
        assert_eq!((m.state, m.size), (ObjectState::Pending, 12));
        // Backoff, failure, retry.
        let later = Timestamp::parse(&Timestamp(Timestamp::now().0 + time::Duration::hours(1)).to_string()).unwrap();
        db.sync_job_set(&a, SyncState::Pending, 3, Some(later), Some("unreachable")).unwrap();
        assert!(db.sync_jobs_due(Timestamp::now()).unwrap().is_empty());
        assert_eq!(db.sync_next_deadline().unwrap(), Some(later));
        db.sync_job_set(&a, SyncState::Failed, 4, None, Some("gave up")).unwrap();
        let mut o = db.sync_objects(&a).unwrap().remove(0);
        o.state = ObjectState::Failed;
        db.sync_object_update(&o).unwrap();
        assert!(db.sync_retry(&a, false).unwrap());
        assert!(!db.sync_retry("nope", false).unwrap());
        let j = db.sync_job(&a).unwrap().unwrap();
        assert_eq!((j.state, j.attempts, j.last_error), (SyncState::Pending, 0, None));
        assert_eq!(db.sync_jobs_due(Timestamp::now()).unwrap().len(), 1);
        assert_eq!(db.sync_objects(&a).unwrap()[0].state, ObjectState::Pending);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn only_synced_archives_are_evicted() {
        let (db, dir) = db();
        let a = asset(&db, "old");
        let b = asset(&db, "unsynced");
        for id in [&a, &b] {
            db.recording_ensure(&crate::RecordingRow {
                asset_id: id.clone(),
                availability_start: Timestamp::now(),
                target_duration_ms: 2000,
            })
            .unwrap();
        }
        db.sync_enqueue(&a, "s", false).unwrap();
        db.sync_enqueue(&b, "s", false).unwrap();
        assert!(db.sync_evictable().unwrap().is_empty());
        assert!(!db.sync_evict(&b, "/x/b").unwrap());
        db.sync_job_set(&a, SyncState::Synced, 0, None, None).unwrap();
        assert_eq!(db.sync_unsynced_assets().unwrap(), vec![b.clone()]);
        let ev: Vec<String> = db.sync_evictable().unwrap().into_iter().map(|j| j.asset_id).collect();
        assert_eq!(ev, vec![a.clone()]);
        assert!(db.sync_evict(&a, "/x/a").unwrap());
        assert!(db.recording(&a).unwrap().is_none());
        assert!(db.recording(&b).unwrap().is_some());
        assert_eq!(db.garbage().unwrap(), vec!["/x/a".to_string()]);
        assert!(db.sync_job(&a).unwrap().unwrap().evicted_at.is_some());
        assert!(!db.sync_evict(&a, "/x/a").unwrap(), "evicted once");
        std::fs::remove_dir_all(dir).ok();
    }
}
