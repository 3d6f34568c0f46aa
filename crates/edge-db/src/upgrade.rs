//! Schema creation and upgrades. A fresh database gets `schema.sql` (the current version); an
//! older one is upgraded step by step from its version, each step in its own transaction, and
//! a database newer than this binary is refused rather than misread.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{DbError, Result, SCHEMA_VERSION, now_unix};

const CURRENT: &str = include_str!("schema.sql");

/// `(from, to, sql)`: the upgrade steps, in order.
const STEPS: &[(i64, i64, &str)] = &[
    (1, 2, include_str!("upgrade/v1_to_v2.sql")),
    (2, 3, include_str!("upgrade/v2_to_v3.sql")),
    (3, 4, include_str!("upgrade/v3_to_v4.sql")),
    (4, 5, include_str!("upgrade/v4_to_v5.sql")),
];

/// The frozen first schema, kept to test upgrades from real old databases.
#[cfg(test)]
pub(crate) const V1: &str = include_str!("upgrade/v1.sql");

pub(crate) fn current_version(conn: &Connection) -> Result<Option<i64>> {
    let has_table: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'version'", [], |r| {
            r.get::<_, i64>(0)
        })? > 0;
    if !has_table {
        return Ok(None);
    }
    Ok(conn.query_row("SELECT max(id) FROM version", [], |r| r.get(0)).optional()?.flatten())
}

pub(crate) fn create_or_upgrade(conn: &mut Connection) -> Result<()> {
    match current_version(conn)? {
        None => {
            let tx = conn.transaction()?;
            tx.execute_batch(CURRENT)?;
            tx.execute(
                "INSERT INTO version (id, unix_time, notes) VALUES (?1, ?2, 'created')",
                params![SCHEMA_VERSION, now_unix()],
            )?;
            tx.commit()?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(DbError::Incompatible(format!(
                "the database has schema version {v}, newer than this software's {SCHEMA_VERSION}; \
                 refusing to open it (install the newer software, or restore a backup)"
            )));
        }
        Some(mut v) => {
            // Steps that rebuild a table (to change a CHECK constraint) must neither cascade
            // deletes nor rewrite other tables' REFERENCES: the documented way is to turn
            // foreign keys off around the change and check them before turning them back on.
            conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON;")?;
            let upgraded = upgrade_steps(conn, &mut v);
            conn.execute_batch("PRAGMA legacy_alter_table = OFF;")?;
            upgraded?;
            let broken: Option<String> = conn
                .query_row("SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1", [], |r| r.get(0))
                .optional()?;
            if let Some(t) = broken {
                return Err(DbError::Incompatible(format!(
                    "the upgraded database has rows in '{t}' that point to nothing; restore a backup"
                )));
            }
            conn.execute_batch("PRAGMA foreign_keys = ON;")?;
            if v != SCHEMA_VERSION {
                return Err(DbError::Incompatible(format!("no upgrade path from schema version {v}")));
            }
        }
    }
    Ok(())
}

/// Runs the upgrade steps from version `v`, each in its own transaction.
fn upgrade_steps(conn: &mut Connection, v: &mut i64) -> Result<()> {
    for &(from, to, sql) in STEPS {
        if *v != from {
            continue;
        }
        tracing::info!(from, to, "upgrading database schema");
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO version (id, unix_time, notes) VALUES (?1, ?2, ?3)",
            params![to, now_unix(), format!("upgraded from {from}")],
        )?;
        tx.commit()?;
        *v = to;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LiveEventRow;

    fn schema_of(conn: &Connection) -> Vec<(String, String, String)> {
        let mut st = conn
            .prepare("SELECT type, name, coalesce(sql,'') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))
            .unwrap()
            .map(|r| {
                let (t, n, s) = r.unwrap();
                // Compare structure, not comments or whitespace.
                let s: String = s
                    .lines()
                    .map(|l| l.split("--").next().unwrap_or("").trim())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                (t, n, s)
            })
            .collect()
    }

    /// A v1 database with awkward real rows upgrades to the current schema, keeps its rows, and
    /// ends structurally identical to a freshly created database.
    #[test]
    fn upgrade_v1_with_rows_matches_fresh_schema() {
        let dir = std::env::temp_dir().join(format!("edge-db-upgrade-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.execute_batch(V1).unwrap();
            conn.execute_batch(
                "PRAGMA foreign_keys = ON;
                 INSERT INTO version VALUES (1, 0, 'created');
                 INSERT INTO meta VALUES ('jwt-secret', 'abc');
                 INSERT INTO live_events VALUES ('11111111-1111-1111-1111-111111111111', 'Ev_1', 'ev_1', 'West US', '{\"k\":\"v\"}',
                   'RTMP', 'PassthroughStandard', 'tok', 'Running', 'Succeeded', '{\"description\":\"é ✓\"}',
                   '2024-01-01T00:00:00.0000000Z', '2024-01-01T00:00:00.0000000Z');
                 INSERT INTO assets VALUES ('22222222-2222-2222-2222-222222222222', 'Video', 'video', 'asset-2222', '', 'manifest', '{}',
                   '2024-01-01T00:00:00.0000000Z', '2024-01-01T00:00:00.0000000Z');
                 INSERT INTO live_outputs VALUES ('33333333-3333-3333-3333-333333333333', '11111111-1111-1111-1111-111111111111',
                   '22222222-2222-2222-2222-222222222222', 'out', 'out', 'manifest', 300000, 'Running', 'Succeeded', '{}',
                   '2024-01-01T00:00:00.0000000Z', '2024-01-01T00:00:00.0000000Z');
                 INSERT INTO operations VALUES ('44444444-4444-4444-4444-444444444444', 'liveEvent', 'le:ev_1', 'Ev_1', 'start',
                   'InProgress', NULL, NULL, '2024-01-01T00:00:00.0000000Z', NULL);",
            )
            .unwrap();
        }
        let db = crate::Db::open(&old, "test").unwrap();
        let ev = db.live_event("ev_1").unwrap().unwrap();
        assert_eq!(ev.name, "Ev_1");
        assert_eq!(ev.properties["description"], "é ✓");
        assert_eq!(db.live_outputs("ev_1").unwrap().len(), 1, "the rebuild of live_events kept its outputs");
        assert_eq!(db.operations_in_flight().unwrap().len(), 1);
        let capture = LiveEventRow {
            id: "55555555-5555-5555-5555-555555555555".into(),
            name: "Cam".into(),
            access_token: "tok2".into(),
            protocol: edge_model::StreamingProtocol::LocalCapture,
            ..ev.clone()
        };
        db.live_event_insert(&capture, None).expect("v5 accepts LocalCapture events");
        assert_eq!(db.meta_get("jwt-secret").unwrap().as_deref(), Some("abc"));

        let fresh_path = dir.join("fresh.db");
        let _fresh = crate::Db::open(&fresh_path, "test").unwrap();
        let a = Connection::open(&old).unwrap();
        let b = Connection::open(&fresh_path).unwrap();
        assert_eq!(schema_of(&a), schema_of(&b));
        assert_eq!(current_version(&a).unwrap(), Some(SCHEMA_VERSION));
        drop(db);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A v3 database (built by the frozen steps) with a real recording upgrades to v4: the
    /// recording index is kept, the outbox tables are usable, and the schema is identical to
    /// a fresh one.
    #[test]
    fn upgrade_v3_with_recording_rows_matches_fresh_schema() {
        let dir = std::env::temp_dir().join(format!("edge-db-upgrade-v3-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.execute_batch(V1).unwrap();
            for &(_, to, sql) in STEPS.iter().filter(|s| s.1 <= 3) {
                conn.execute_batch(sql).unwrap();
                conn.execute("INSERT INTO version VALUES (?1, 0, 'step')", [to]).unwrap();
            }
            conn.execute_batch(
                "PRAGMA foreign_keys = ON;
                 INSERT INTO version VALUES (1, 0, 'created');
                 INSERT INTO assets VALUES ('22222222-2222-2222-2222-222222222222', 'Rec', 'rec', 'asset-2222', 'cloud', 'manifest', '{}',
                   '2024-01-01T00:00:00.0000000Z', '2024-01-01T00:00:00.0000000Z');
                 INSERT INTO recordings VALUES ('22222222-2222-2222-2222-222222222222', '2024-01-01T00:00:00.0000000Z', 2000,
                   '2024-01-01T00:00:00.0000000Z');
                 INSERT INTO periods VALUES ('22222222-2222-2222-2222-222222222222', 0, 0, 90000, 0);
                 INSERT INTO renditions VALUES ('22222222-2222-2222-2222-222222222222', 'video', 0, 1, 'video', 'avc1.64001f', 90000,
                   3000000, 0, 1280, 720, 30, 1, 0, 0, '2024-01-01T00:00:00.0000000Z');
                 INSERT INTO segments VALUES ('22222222-2222-2222-2222-222222222222', 'video', 0, 0, 0, 180000, 123456, 1,
                   '2024-01-01T00:00:00.0000000Z');
                 INSERT INTO garbage VALUES ('/data/assets/gone', '2024-01-01T00:00:00.0000000Z');",
            )
            .unwrap();
            assert_eq!(current_version(&conn).unwrap(), Some(3));
        }
        let db = crate::Db::open(&old, "test").unwrap();
        let id = "22222222-2222-2222-2222-222222222222";
        assert_eq!(db.asset_segments(id).unwrap().len(), 1);
        assert_eq!(db.asset_segments(id).unwrap()[0].size, 123456);
        assert_eq!(db.renditions(id).unwrap()[0].codec, "avc1.64001f");
        assert_eq!(db.garbage().unwrap(), vec!["/data/assets/gone".to_string()]);
        // The outbox works on the upgraded database, and it sees the old recording as unsynced.
        assert_eq!(db.sync_unsynced_assets().unwrap(), vec![id.to_string()]);
        db.sync_enqueue(id, "cloud", false).unwrap();
        assert_eq!(db.sync_job(id).unwrap().unwrap().asset_name, "Rec");

        let fresh_path = dir.join("fresh.db");
        let _fresh = crate::Db::open(&fresh_path, "test").unwrap();
        let a = Connection::open(&old).unwrap();
        let b = Connection::open(&fresh_path).unwrap();
        assert_eq!(schema_of(&a), schema_of(&b));
        assert_eq!(current_version(&a).unwrap(), Some(SCHEMA_VERSION));
        drop(db);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn refuses_a_newer_database() {
        let dir = std::env::temp_dir().join(format!("edge-db-newer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("db");
        drop(crate::Db::open(&p, "t").unwrap());
        Connection::open(&p).unwrap().execute("INSERT INTO version VALUES (99, 0, 'future')", []).unwrap();
        match crate::Db::open(&p, "t") {
            Err(DbError::Incompatible(m)) => assert!(m.contains("newer"), "{m}"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a newer database"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
