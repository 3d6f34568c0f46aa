//! The recorder: puts CMAF init segments and media segments of an asset on disk so that a
//! crash or power cut loses at most the segment being written (docs/crash-safety.md):
//!
//! 1. write `<name>.tmp` in the rendition's directory and `fsync` it;
//! 2. `rename` it to its final name and `fsync` the directory;
//! 3. only then insert the index row (SQLite, `synchronous=FULL`).
//!
//! A file without a row is garbage (start-up removes it); a row always has its file.
//! Layout: `<assets>/<asset id>/<rendition>/init-<period>.mp4` and `.../<seq>.m4s`.
//! All calls block (file IO and fsync): run them on a blocking thread.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use edge_db::{Db, DbError, PeriodRow, RenditionRow, SegmentRow};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("disk: {0}")]
    Io(#[from] std::io::Error),
    #[error("index: {0}")]
    Db(#[from] DbError),
    #[error("invalid rendition name '{0}'")]
    BadName(String),
    /// A new recording was refused (the disk is full of archives not yet synced).
    #[error("recording refused: {0}")]
    Refused(String),
}

/// Admission of new recordings. The disk policy (edge-sync) closes it, with the reason, when
/// the disk is full of archives that are not yet synced and so may not be deleted; a
/// recording that has already begun continues. Open by default.
#[derive(Clone, Debug, Default)]
pub struct RecordGate(Arc<std::sync::RwLock<Option<String>>>);

impl RecordGate {
    pub fn close(&self, reason: String) {
        *self.0.write().expect("gate poisoned") = Some(reason);
    }
    pub fn open(&self) {
        *self.0.write().expect("gate poisoned") = None;
    }
    /// Why new recordings are refused, if they are.
    pub fn refused(&self) -> Option<String> {
        self.0.read().expect("gate poisoned").clone()
    }
}

pub type Result<T> = std::result::Result<T, RecordError>;

#[derive(Clone)]
pub struct Recorder {
    db: Arc<Db>,
    assets_dir: PathBuf,
    gate: RecordGate,
}

/// Rendition names become directory names: keep them to a safe alphabet.
fn check_rendition(r: &str) -> Result<()> {
    if r.is_empty() || r.len() > 64 || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(RecordError::BadName(r.to_owned()));
    }
    Ok(())
}

pub fn init_name(period: i64) -> String {
    format!("init-{period}.mp4")
}

pub fn segment_name(seq: i64) -> String {
    format!("{seq}.m4s")
}

/// Writes `data` to `dir/name` durably: temporary file, fsync, rename, fsync of the directory.
pub fn write_durable(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// What start-up found and repaired.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Half-written `*.tmp` files removed (the segments in progress at the crash).
    pub temp_removed: usize,
    /// Complete files with no index row (written, crash before the row): removed.
    pub orphans_removed: usize,
    /// Index rows whose file is missing (disk tampered with or lost): reported, kept.
    pub missing_files: Vec<String>,
}

impl Recorder {
    pub fn new(db: Arc<Db>, assets_dir: PathBuf) -> Self {
        Recorder { db, assets_dir, gate: RecordGate::default() }
    }

    /// The admission gate of new recordings (shared by every clone of this recorder).
    pub fn gate(&self) -> RecordGate {
        self.gate.clone()
    }

    pub fn assets_dir(&self) -> &Path {
        &self.assets_dir
    }

    pub fn rendition_dir(&self, asset_id: &str, rendition: &str) -> PathBuf {
        self.assets_dir.join(asset_id).join(rendition)
    }

    /// Records the init segment of a rendition's period, then its rows.
    pub fn write_init(&self, p: &PeriodRow, r: &RenditionRow, data: &[u8]) -> Result<()> {
        check_rendition(&r.rendition)?;
        if let Some(why) = self.gate.refused()
            && !self.db.asset_has_recording(&r.asset_id)?
        {
            return Err(RecordError::Refused(why));
        }
        let dir = self.rendition_dir(&r.asset_id, &r.rendition);
        if !dir.exists() {
            fs::create_dir_all(&dir)?;
            // The new directories' entries must survive a power cut too.
            File::open(dir.parent().expect("asset dir"))?.sync_all()?;
            File::open(&self.assets_dir)?.sync_all()?;
        }
        write_durable(&dir, &init_name(r.period), data)?;
        self.db.rendition_insert(p, r)?;
        Ok(())
    }

    /// Records the segments of one cut point (all renditions), then their rows in one
    /// transaction.
    pub fn write_segments(&self, segs: &[(SegmentRow, Bytes)]) -> Result<()> {
        for (row, data) in segs {
            check_rendition(&row.rendition)?;
            let dir = self.rendition_dir(&row.asset_id, &row.rendition);
            write_durable(&dir, &segment_name(row.seq), data)?;
        }
        let rows: Vec<SegmentRow> = segs.iter().map(|(r, _)| r.clone()).collect();
        self.db.segments_insert(&rows)?;
        Ok(())
    }

    /// Start-up repair of the recording directories (see the module docs).
    pub fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let Ok(assets) = fs::read_dir(&self.assets_dir) else {
            return Ok(report);
        };
        for asset in assets.flatten() {
            let asset_id = asset.file_name().to_string_lossy().into_owned();
            if !asset.path().is_dir() {
                continue;
            }
            for rend in fs::read_dir(asset.path())?.flatten() {
                if !rend.path().is_dir() {
                    continue;
                }
                let rendition = rend.file_name().to_string_lossy().into_owned();
                let rows = self.db.segments(&asset_id, &rendition, i64::MIN)?;
                let periods: Vec<i64> = self
                    .db
                    .renditions(&asset_id)?
                    .into_iter()
                    .filter(|r| r.rendition == rendition)
                    .map(|r| r.period)
                    .collect();
                let mut known: std::collections::HashSet<String> = rows.iter().map(|r| segment_name(r.seq)).collect();
                known.extend(periods.iter().map(|p| init_name(*p)));
                for f in fs::read_dir(rend.path())?.flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".tmp") {
                        fs::remove_file(f.path())?;
                        report.temp_removed += 1;
                    } else if !known.remove(&name) {
                        tracing::warn!(asset = %asset_id, rendition = %rendition, file = %name, "removing a recorded file that has no index row (written just before a crash)");
                        fs::remove_file(f.path())?;
                        report.orphans_removed += 1;
                    }
                }
                for missing in known {
                    tracing::error!(asset = %asset_id, rendition = %rendition, file = %missing, "an indexed recording file is missing from the disk");
                    report.missing_files.push(format!("{asset_id}/{rendition}/{missing}"));
                }
                File::open(rend.path())?.sync_all()?;
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_model::Timestamp;

    fn setup() -> (Recorder, Arc<Db>, PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("edge-record-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(dir.join("assets")).unwrap();
        let db = Arc::new(Db::open(&dir.join("db"), "t").unwrap());
        let asset_id = uuid::Uuid::new_v4().to_string();
        let now = Timestamp::now();
        db.asset_upsert(&edge_db::AssetRow {
            id: asset_id.clone(),
            name: "a".into(),
            container: format!("asset-{asset_id}"),
            storage_account: String::new(),
            manifest_name: Some("manifest".into()),
            properties: serde_json_value(),
            created: now,
            last_modified: now,
        })
        .unwrap();
        (Recorder::new(db.clone(), dir.join("assets")), db, dir, asset_id)
    }

    fn serde_json_value() -> edge_db::JsonValue {
        edge_db::JsonValue::Object(Default::default())
    }

    fn period(asset: &str) -> PeriodRow {
        PeriodRow { asset_id: asset.into(), period: 0, media_start: 0, media_timescale: 90000, live_start_ms: 0 }
    }

    fn rendition(asset: &str) -> RenditionRow {
        RenditionRow {
            asset_id: asset.into(),
            rendition: "video".into(),
            period: 0,
            track_id: 1,
            kind: "video".into(),
            codec: "avc1.64001f".into(),
            timescale: 90000,
            bandwidth: 2_000_000,
            average_bandwidth: 0,
            width: 1280,
            height: 720,
            frame_rate_num: 30,
            frame_rate_den: 1,
            sample_rate: 0,
            channels: 0,
            created: Timestamp::now(),
        }
    }

    fn seg(asset: &str, seq: i64) -> (SegmentRow, Bytes) {
        (
            SegmentRow {
                asset_id: asset.into(),
                rendition: "video".into(),
                seq,
                period: 0,
                start: seq * 180_000,
                duration: 180_000,
                size: 3,
                independent: true,
                wallclock: Timestamp::now(),
            },
            Bytes::from_static(b"seg"),
        )
    }

    #[test]
    fn files_then_rows_and_recovery() {
        let (rec, db, dir, asset) = setup();
        rec.write_init(&period(&asset), &rendition(&asset), b"init").unwrap();
        rec.write_segments(&[seg(&asset, 0), seg(&asset, 1)]).unwrap();
        assert_eq!(db.segments(&asset, "video", 0).unwrap().len(), 2);
        let rdir = rec.rendition_dir(&asset, "video");
        assert_eq!(fs::read(rdir.join("1.m4s")).unwrap(), b"seg");

        // A crash mid-write leaves a .tmp; a crash between rename and row leaves an orphan.
        fs::write(rdir.join("2.m4s.tmp"), b"half").unwrap();
        fs::write(rdir.join("2.m4s"), b"seg").unwrap();
        // And a row whose file vanished is reported, never silently dropped.
        fs::remove_file(rdir.join("0.m4s")).unwrap();
        let report = rec.recover().unwrap();
        assert_eq!(report.temp_removed, 1);
        assert_eq!(report.orphans_removed, 1);
        assert_eq!(report.missing_files, vec![format!("{asset}/video/0.m4s")]);
        assert!(rdir.join("1.m4s").exists());
        assert!(rdir.join("init-0.mp4").exists());
        assert!(!rdir.join("2.m4s").exists());

        let tails = db.recording_tails(&asset).unwrap();
        assert_eq!(tails[0].next_seq, 2);
        assert_eq!(tails[0].end, 360_000);
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_duplicate_segment_is_refused_not_overwritten_in_the_index() {
        let (rec, _db, dir, asset) = setup();
        rec.write_init(&period(&asset), &rendition(&asset), b"init").unwrap();
        rec.write_segments(&[seg(&asset, 0)]).unwrap();
        assert!(matches!(rec.write_segments(&[seg(&asset, 0)]), Err(RecordError::Db(DbError::Conflict(_)))));
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rendition_names_cannot_escape_the_asset_directory() {
        let (rec, _db, dir, asset) = setup();
        let mut r = rendition(&asset);
        r.rendition = "../x".into();
        assert!(matches!(rec.write_init(&period(&asset), &r, b"i"), Err(RecordError::BadName(_))));
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_closed_gate_refuses_new_recordings_but_not_running_ones() {
        let (rec, db, dir, asset) = setup();
        let gate = rec.gate();
        rec.write_init(&period(&asset), &rendition(&asset), b"init").unwrap();
        rec.write_segments(&[seg(&asset, 0)]).unwrap();
        gate.close("the disk is full".into());
        // The asset already records: a new period of it continues.
        let mut r1 = rendition(&asset);
        r1.period = 1;
        rec.write_init(&PeriodRow { period: 1, ..period(&asset) }, &r1, b"init1").unwrap();
        // A new asset is refused, with the reason, and nothing is written for it.
        let (_, _, dir2, _) = setup();
        let other = uuid::Uuid::new_v4().to_string();
        let now = Timestamp::now();
        db.asset_upsert(&edge_db::AssetRow {
            id: other.clone(),
            name: "b".into(),
            container: format!("asset-{other}"),
            storage_account: String::new(),
            manifest_name: None,
            properties: serde_json_value(),
            created: now,
            last_modified: now,
        })
        .unwrap();
        match rec.write_init(&period(&other), &rendition(&other), b"init") {
            Err(RecordError::Refused(m)) => assert!(m.contains("disk is full")),
            other => panic!("{other:?}"),
        }
        assert!(!rec.rendition_dir(&other, "video").exists());
        gate.open();
        rec.write_init(&period(&other), &rendition(&other), b"init").unwrap();
        fs::remove_dir_all(dir).ok();
        fs::remove_dir_all(dir2).ok();
    }
}
