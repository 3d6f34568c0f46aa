-- Schema 2 -> 3: the recording index and the garbage table.
-- v3: the recording index. A segment file is written, fsynced and renamed into place before
-- its row is inserted (docs/crash-safety.md), so every row has its file.
-- One row per recorded asset: the wall clock its live presentation counts from.
CREATE TABLE recordings (
  asset_id TEXT PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
  availability_start TEXT NOT NULL, -- wall clock of presentation time zero (DASH availabilityStartTime)
  target_duration_ms INTEGER NOT NULL CHECK (target_duration_ms > 0),
  created TEXT NOT NULL
);

-- Periods: what lies between two discontinuities (encoder reconnects, parameter changes).
CREATE TABLE periods (
  asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
  period INTEGER NOT NULL CHECK (period >= 0),
  media_start INTEGER NOT NULL,    -- start on the continuous media timeline ...
  media_timescale INTEGER NOT NULL CHECK (media_timescale > 0), -- ... in these ticks per second
  live_start_ms INTEGER NOT NULL,  -- start in the live presentation, since availability_start
  PRIMARY KEY (asset_id, period)
) WITHOUT ROWID;

-- One row per rendition of an asset per period, with the codec parameters its manifests need.
CREATE TABLE renditions (
  asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
  rendition TEXT NOT NULL,         -- 'video', 'audio', later 'video_3500000' for ABR
  period INTEGER NOT NULL CHECK (period >= 0),
  track_id INTEGER NOT NULL,       -- the CMAF track id in its segments
  kind TEXT NOT NULL CHECK (kind IN ('video','audio')),
  codec TEXT NOT NULL,             -- RFC 6381 codec string, e.g. avc1.64001f
  timescale INTEGER NOT NULL CHECK (timescale > 0),
  bandwidth INTEGER NOT NULL,      -- declared peak bit/s (0 = unknown: measured from segments)
  average_bandwidth INTEGER NOT NULL DEFAULT 0,
  width INTEGER NOT NULL DEFAULT 0,
  height INTEGER NOT NULL DEFAULT 0,
  frame_rate_num INTEGER NOT NULL DEFAULT 0, -- 0 = unknown
  frame_rate_den INTEGER NOT NULL DEFAULT 1,
  sample_rate INTEGER NOT NULL DEFAULT 0,
  channels INTEGER NOT NULL DEFAULT 0,
  created TEXT NOT NULL,
  PRIMARY KEY (asset_id, rendition, period)
) WITHOUT ROWID;

CREATE TABLE segments (
  asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
  rendition TEXT NOT NULL,
  seq INTEGER NOT NULL CHECK (seq >= 0),     -- monotonic per rendition, across periods
  period INTEGER NOT NULL,
  start INTEGER NOT NULL,                    -- baseMediaDecodeTime, rendition timescale, monotonic
  duration INTEGER NOT NULL CHECK (duration > 0),
  size INTEGER NOT NULL CHECK (size > 0),
  independent INTEGER NOT NULL DEFAULT 1,    -- starts with a random access point
  wallclock TEXT NOT NULL,                   -- wall-clock time of the segment start
  PRIMARY KEY (asset_id, rendition, seq)
) WITHOUT ROWID;

-- Directories and files to remove. A deletion first records its path here (in the same
-- transaction that removes the rows), then unlinks, then removes this row; start-up finishes
-- deletions a crash interrupted.
CREATE TABLE garbage (
  path TEXT PRIMARY KEY,
  created TEXT NOT NULL
);
