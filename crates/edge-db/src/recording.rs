//! The recording index: renditions and segments of assets, and the garbage list.

use edge_model::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::{Db, DbError, Result, query_all};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionRow {
    pub asset_id: String,
    pub rendition: String,
    pub period: i64,
    pub track_id: i64,
    pub kind: String,
    pub codec: String,
    pub timescale: i64,
    pub bandwidth: i64,
    pub average_bandwidth: i64,
    pub width: i64,
    pub height: i64,
    pub frame_rate_num: i64,
    pub frame_rate_den: i64,
    pub sample_rate: i64,
    pub channels: i64,
    pub created: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub asset_id: String,
    pub rendition: String,
    pub seq: i64,
    pub period: i64,
    pub start: i64,
    pub duration: i64,
    pub size: i64,
    pub independent: bool,
    pub wallclock: Timestamp,
}

/// A recorded asset's presentation anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRow {
    pub asset_id: String,
    pub availability_start: Timestamp,
    pub target_duration_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodRow {
    pub asset_id: String,
    pub period: i64,
    pub media_start: i64,
    pub media_timescale: i64,
    pub live_start_ms: i64,
}

/// Where an asset's recording ends, per rendition: recording into it again continues from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionTail {
    pub rendition: String,
    pub timescale: i64,
    pub last_period: i64,
    pub next_seq: i64,
    pub end: i64,
}

/// Whether an asset is being recorded now, and its live window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetLiveInfo {
    pub live_event_id: String,
    pub live_event_running: bool,
    pub archive_window_ms: i64,
    /// `rewindWindowLength` if set, in ms.
    pub rewind_window_ms: Option<i64>,
}

fn ts(s: String) -> rusqlite::Result<Timestamp> {
    Timestamp::parse(&s)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "timestamp".into(), rusqlite::types::Type::Text))
}

const REND_COLS: &str = "asset_id, rendition, period, track_id, kind, codec, timescale, bandwidth, average_bandwidth, width, height, frame_rate_num, frame_rate_den, sample_rate, channels, created";
const SEG_COLS: &str = "asset_id, rendition, seq, period, start, duration, size, independent, wallclock";

fn rendition_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RenditionRow>> {
    Ok(Ok(RenditionRow {
        asset_id: r.get(0)?,
        rendition: r.get(1)?,
        period: r.get(2)?,
        track_id: r.get(3)?,
        kind: r.get(4)?,
        codec: r.get(5)?,
        timescale: r.get(6)?,
        bandwidth: r.get(7)?,
        average_bandwidth: r.get(8)?,
        width: r.get(9)?,
        height: r.get(10)?,
        frame_rate_num: r.get(11)?,
        frame_rate_den: r.get(12)?,
        sample_rate: r.get(13)?,
        channels: r.get(14)?,
        created: ts(r.get(15)?)?,
    }))
}

fn segment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SegmentRow>> {
    Ok(Ok(SegmentRow {
        asset_id: r.get(0)?,
        rendition: r.get(1)?,
        seq: r.get(2)?,
        period: r.get(3)?,
        start: r.get(4)?,
        duration: r.get(5)?,
        size: r.get(6)?,
        independent: r.get(7)?,
        wallclock: ts(r.get(8)?)?,
    }))
}

impl Db {
    /// Records the presentation anchor of an asset the first time it is recorded into; later
    /// calls keep the first anchor (a recording continues on the same timeline).
    pub fn recording_ensure(&self, r: &RecordingRow) -> Result<RecordingRow> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO recordings (asset_id, availability_start, target_duration_ms, created) VALUES (?1,?2,?3,?4)",
                params![r.asset_id, r.availability_start.to_string(), r.target_duration_ms, Timestamp::now().to_string()],
            )?;
            Ok(tx.query_row(
                "SELECT asset_id, availability_start, target_duration_ms FROM recordings WHERE asset_id = ?1",
                [&r.asset_id],
                |row| Ok(RecordingRow { asset_id: row.get(0)?, availability_start: ts(row.get(1)?)?, target_duration_ms: row.get(2)? }),
            )?)
        })
    }

    pub fn recording(&self, asset_id: &str) -> Result<Option<RecordingRow>> {
        self.with_reader(|c| {
            Ok(c.query_row(
                "SELECT asset_id, availability_start, target_duration_ms FROM recordings WHERE asset_id = ?1",
                [asset_id],
                |row| {
                    Ok(RecordingRow {
                        asset_id: row.get(0)?,
                        availability_start: ts(row.get(1)?)?,
                        target_duration_ms: row.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// Records a period and a rendition of it (the init segment's file is already on disk).
    pub fn rendition_insert(&self, p: &PeriodRow, r: &RenditionRow) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO periods (asset_id, period, media_start, media_timescale, live_start_ms) VALUES (?1,?2,?3,?4,?5)",
                params![p.asset_id, p.period, p.media_start, p.media_timescale, p.live_start_ms],
            )?;
            tx.execute(
                &format!("INSERT OR REPLACE INTO renditions ({REND_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"),
                params![
                    r.asset_id, r.rendition, r.period, r.track_id, r.kind, r.codec, r.timescale, r.bandwidth,
                    r.average_bandwidth, r.width, r.height, r.frame_rate_num, r.frame_rate_den, r.sample_rate,
                    r.channels, r.created.to_string()
                ],
            )?;
            Ok(())
        })
    }

    /// Inserts segment rows in one transaction (one fsync for a whole cut point).
    pub fn segments_insert(&self, segs: &[SegmentRow]) -> Result<()> {
        self.with_tx(|tx| {
            let mut st =
                tx.prepare_cached(&format!("INSERT INTO segments ({SEG_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"))?;
            for s in segs {
                st.execute(params![
                    s.asset_id,
                    s.rendition,
                    s.seq,
                    s.period,
                    s.start,
                    s.duration,
                    s.size,
                    s.independent,
                    s.wallclock.to_string()
                ])
                .map_err(|e| match &e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        DbError::Conflict(format!("segment {}/{} #{} already recorded", s.asset_id, s.rendition, s.seq))
                    }
                    _ => DbError::Sqlite(e),
                })?;
            }
            Ok(())
        })
    }

    pub fn periods(&self, asset_id: &str) -> Result<Vec<PeriodRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                "SELECT asset_id, period, media_start, media_timescale, live_start_ms FROM periods WHERE asset_id = ?1 ORDER BY period",
                [asset_id],
                |r| {
                    Ok(Ok(PeriodRow {
                        asset_id: r.get(0)?,
                        period: r.get(1)?,
                        media_start: r.get(2)?,
                        media_timescale: r.get(3)?,
                        live_start_ms: r.get(4)?,
                    }))
                },
            )
        })
    }

    pub fn renditions(&self, asset_id: &str) -> Result<Vec<RenditionRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!(
                    "SELECT {REND_COLS} FROM renditions WHERE asset_id = ?1 ORDER BY period, kind DESC, rendition"
                ),
                [asset_id],
                rendition_row,
            )
        })
    }

    /// Segments of a rendition that end after `from` (media time), in order.
    pub fn segments(&self, asset_id: &str, rendition: &str, from: i64) -> Result<Vec<SegmentRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("SELECT {SEG_COLS} FROM segments WHERE asset_id = ?1 AND rendition = ?2 AND start + duration > ?3 ORDER BY seq"),
                params![asset_id, rendition, from],
                segment_row,
            )
        })
    }

    /// All segments of an asset, by rendition then seq.
    pub fn asset_segments(&self, asset_id: &str) -> Result<Vec<SegmentRow>> {
        self.with_reader(|c| {
            query_all(
                c,
                &format!("SELECT {SEG_COLS} FROM segments WHERE asset_id = ?1 ORDER BY rendition, seq"),
                [asset_id],
                segment_row,
            )
        })
    }

    pub fn segment(&self, asset_id: &str, rendition: &str, seq: i64) -> Result<Option<SegmentRow>> {
        self.with_reader(|c| {
            crate::query_one(
                c,
                &format!("SELECT {SEG_COLS} FROM segments WHERE asset_id = ?1 AND rendition = ?2 AND seq = ?3"),
                params![asset_id, rendition, seq],
                segment_row,
            )
        })
    }

    /// Whether the asset holds any recorded media.
    pub fn asset_has_recording(&self, asset_id: &str) -> Result<bool> {
        self.with_reader(|c| {
            Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM segments WHERE asset_id = ?1)", [asset_id], |r| r.get(0))?)
        })
    }

    pub fn recording_tails(&self, asset_id: &str) -> Result<Vec<RenditionTail>> {
        self.with_reader(|c| {
            query_all(
                c,
                "SELECT s.rendition, r.timescale, max(s.period), max(s.seq) + 1, max(s.start + s.duration)
                 FROM segments s JOIN renditions r ON r.asset_id = s.asset_id AND r.rendition = s.rendition AND r.period = s.period
                 WHERE s.asset_id = ?1 GROUP BY s.rendition",
                [asset_id],
                |r| Ok(Ok(RenditionTail { rendition: r.get(0)?, timescale: r.get(1)?, last_period: r.get(2)?, next_seq: r.get(3)?, end: r.get(4)? })),
            )
        })
    }

    /// The live output recording into this asset, if any.
    pub fn asset_live_info(&self, asset_id: &str) -> Result<Option<AssetLiveInfo>> {
        self.with_reader(|c| {
            Ok(c.query_row(
                "SELECT e.id, e.resource_state, o.archive_window_ms, json_extract(o.properties, '$.rewindWindowLength')
                 FROM live_outputs o JOIN live_events e ON e.id = o.live_event_id WHERE o.asset_id = ?1",
                [asset_id],
                |r| {
                    let rewind: Option<String> = r.get(3)?;
                    Ok(AssetLiveInfo {
                        live_event_id: r.get(0)?,
                        live_event_running: r.get::<_, String>(1)? == "Running",
                        archive_window_ms: r.get(2)?,
                        rewind_window_ms: rewind
                            .and_then(|s| edge_model::IsoDuration::parse(&s).ok())
                            .map(|d| d.0.as_millis() as i64),
                    })
                },
            )
            .optional()?)
        })
    }

    /// The assets the live outputs of an event record into: (asset id, live output name).
    pub fn event_output_assets(&self, live_event_id: &str) -> Result<Vec<(String, String)>> {
        self.with_reader(|c| {
            query_all(
                c,
                "SELECT asset_id, name FROM live_outputs WHERE live_event_id = ?1 AND resource_state != 'Deleting' ORDER BY created",
                [live_event_id],
                |r| Ok(Ok((r.get(0)?, r.get(1)?))),
            )
        })
    }

    pub fn garbage_add(&self, path: &str) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO garbage (path, created) VALUES (?1, ?2)",
                params![path, Timestamp::now().to_string()],
            )?;
            Ok(())
        })
    }

    pub fn garbage(&self) -> Result<Vec<String>> {
        self.with_reader(|c| query_all(c, "SELECT path FROM garbage ORDER BY created", [], |r| Ok(Ok(r.get(0)?))))
    }

    pub fn garbage_done(&self, path: &str) -> Result<()> {
        self.with_tx(|tx| {
            tx.execute("DELETE FROM garbage WHERE path = ?1", [path])?;
            Ok(())
        })
    }
}
