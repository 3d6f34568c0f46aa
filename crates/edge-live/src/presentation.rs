//! Rebuilding a [`Presentation`] from the recording index: the VOD manifests of a finished
//! recording, and the live window after a restart, come from the same rows.

use std::time::Duration;

use edge_cmaf::{FrameRate, MediaTime, Period, Presentation, Rendition, SegmentRef};
use edge_db::{Db, DbError};
use edge_media::TrackKind;

/// The presentation of a recorded asset, or `None` if nothing was recorded into it.
pub fn from_index(db: &Db, asset_id: &str, live: bool, window: Duration) -> Result<Option<Presentation>, DbError> {
    let Some(rec) = db.recording(asset_id)? else { return Ok(None) };
    let mut p = Presentation::new(
        live,
        rec.availability_start.0,
        window,
        Duration::from_millis(rec.target_duration_ms.max(1) as u64),
    );
    for per in db.periods(asset_id)? {
        p.add_period(Period {
            id: per.period as u32,
            media_start: MediaTime::new(per.media_start.max(0) as u64, per.media_timescale.max(1) as u32),
            start: Duration::from_millis(per.live_start_ms.max(0) as u64),
            renditions: Vec::new(),
        });
    }
    for r in db.renditions(asset_id)? {
        p.add_rendition(
            r.period as u32,
            Rendition {
                id: r.rendition.clone(),
                track_id: r.track_id as u32,
                kind: if r.kind == "video" { TrackKind::Video } else { TrackKind::Audio },
                codec: r.codec.clone(),
                bandwidth: r.bandwidth as u32,
                average_bandwidth: r.average_bandwidth as u32,
                width: r.width as u16,
                height: r.height as u16,
                frame_rate: (r.frame_rate_num > 0)
                    .then(|| FrameRate { num: r.frame_rate_num as u32, den: r.frame_rate_den.max(1) as u32 }),
                sample_rate: r.sample_rate as u32,
                channels: r.channels as u16,
                timescale: r.timescale as u32,
            },
        );
    }
    let timescales: std::collections::HashMap<(String, i64), u32> =
        db.renditions(asset_id)?.into_iter().map(|r| ((r.rendition, r.period), r.timescale as u32)).collect();
    for s in db.asset_segments(asset_id)? {
        let Some(&timescale) = timescales.get(&(s.rendition.clone(), s.period)) else { continue };
        p.add_segment(
            &s.rendition,
            SegmentRef {
                seq: s.seq as u64,
                start: s.start as u64,
                duration: s.duration as u64,
                timescale,
                period: s.period as u32,
                program_date_time: Some(s.wallclock.0),
                independent: s.independent,
                bytes: s.size as u64,
            },
        );
    }
    if live {
        p.trim_to_window();
    }
    Ok(Some(p))
}
