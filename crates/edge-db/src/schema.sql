-- rms-edge appliance database, schema version 5 (the current one).
--
-- Conventions:
--  * `name` keeps the spelling the client chose; `name_key` is its ASCII-lowercased form and
--    carries the uniqueness constraint, because ARM compares names case-insensitively.
--  * `properties` is the resource's `properties` document as the API normalized it (enums in
--    AMS spelling, read-only fields removed). Columns beside it hold what the appliance itself
--    reasons about (state, protocol, token, links between resources), so those are typed,
--    constrained and indexed; the document holds what it only echoes.
--  * Timestamps are TEXT in the AMS wire form `YYYY-MM-DDThh:mm:ss.fffffffZ`: fixed width, so
--    they sort and compare correctly as text.

-- One row per schema upgrade (and the initial creation).
CREATE TABLE version (
  id INTEGER PRIMARY KEY,          -- the schema version reached
  unix_time INTEGER NOT NULL,      -- when
  notes TEXT
);

-- Small appliance-wide values: the JWT signing secret, the database identity.
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- API keys. Only a SHA-256 of the secret is stored: keys are 256-bit random values, so a fast
-- hash is safe (nothing to brute-force) and the lookup by id keeps the comparison constant-time.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,             -- public part of the key, printed with `keys list`
  name TEXT NOT NULL,
  secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32),
  created TEXT NOT NULL,
  revoked TEXT                     -- NULL while valid
);

CREATE TABLE live_events (
  id TEXT PRIMARY KEY CHECK (length(id) = 36),  -- UUID, stable for the event's life
  name TEXT NOT NULL,
  name_key TEXT NOT NULL UNIQUE,
  location TEXT NOT NULL,
  tags TEXT NOT NULL DEFAULT '{}',              -- JSON object
  protocol TEXT NOT NULL CHECK (protocol IN ('RTMP','SRT','RTSPPush','RTSPPull','LocalCapture')),
  encoding_type TEXT NOT NULL,
  access_token TEXT NOT NULL UNIQUE,            -- the stream key; selects the event at ingest
  resource_state TEXT NOT NULL CHECK (resource_state IN
    ('Stopped','Allocating','StandBy','Starting','Running','Stopping','Deleting')),
  provisioning_state TEXT NOT NULL CHECK (provisioning_state IN ('InProgress','Succeeded','Failed')),
  properties TEXT NOT NULL,
  created TEXT NOT NULL,
  last_modified TEXT NOT NULL
);

CREATE TABLE assets (
  id TEXT PRIMARY KEY CHECK (length(id) = 36),  -- `assetId`
  name TEXT NOT NULL,
  name_key TEXT NOT NULL UNIQUE,
  container TEXT NOT NULL,                      -- directory / blob container of the archive
  storage_account TEXT NOT NULL,                -- '' = the appliance's default storage
  manifest_name TEXT,                           -- set by the first live output; fixes the URLs
  properties TEXT NOT NULL,
  created TEXT NOT NULL,
  last_modified TEXT NOT NULL
);
CREATE INDEX assets_created ON assets (created);

CREATE TABLE live_outputs (
  id TEXT PRIMARY KEY CHECK (length(id) = 36),
  live_event_id TEXT NOT NULL REFERENCES live_events (id) ON DELETE CASCADE,
  asset_id TEXT NOT NULL REFERENCES assets (id),  -- deleting the asset first is refused
  name TEXT NOT NULL,
  name_key TEXT NOT NULL,
  manifest_name TEXT NOT NULL,
  archive_window_ms INTEGER NOT NULL CHECK (archive_window_ms BETWEEN 60000 AND 90000000),
  resource_state TEXT NOT NULL CHECK (resource_state IN ('Creating','Running','Deleting')),
  provisioning_state TEXT NOT NULL CHECK (provisioning_state IN ('InProgress','Succeeded','Failed')),
  properties TEXT NOT NULL,
  created TEXT NOT NULL,
  last_modified TEXT NOT NULL,
  UNIQUE (live_event_id, name_key)
);
CREATE INDEX live_outputs_asset ON live_outputs (asset_id);

-- User-created streaming policies (the predefined ones live in code and cannot be shadowed).
CREATE TABLE streaming_policies (
  name TEXT NOT NULL,
  name_key TEXT NOT NULL PRIMARY KEY,
  properties TEXT NOT NULL,
  created TEXT NOT NULL
);

CREATE TABLE streaming_locators (
  name TEXT NOT NULL,
  name_key TEXT NOT NULL PRIMARY KEY,
  locator_id TEXT NOT NULL UNIQUE CHECK (length(locator_id) = 36),  -- first segment of playback URLs
  asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
  policy_name TEXT NOT NULL,
  properties TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE INDEX streaming_locators_asset ON streaming_locators (asset_id);

CREATE TABLE streaming_endpoints (
  name TEXT NOT NULL,
  name_key TEXT NOT NULL PRIMARY KEY,
  location TEXT NOT NULL,
  tags TEXT NOT NULL DEFAULT '{}',
  resource_state TEXT NOT NULL CHECK (resource_state IN
    ('Stopped','Starting','Running','Stopping','Deleting','Scaling')),
  provisioning_state TEXT NOT NULL CHECK (provisioning_state IN ('InProgress','Succeeded','Failed')),
  properties TEXT NOT NULL,
  created TEXT NOT NULL,
  last_modified TEXT NOT NULL
);

-- Account filters (asset_id NULL) and asset filters.
CREATE TABLE filters (
  asset_id TEXT REFERENCES assets (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  name_key TEXT NOT NULL,
  properties TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE UNIQUE INDEX filters_scope_name ON filters (coalesce(asset_id, ''), name_key);

-- Long-running operations. `scope` serializes them: one in flight per live event (its live
-- outputs included) and per streaming endpoint.
CREATE TABLE operations (
  id TEXT PRIMARY KEY CHECK (length(id) = 36),
  kind TEXT NOT NULL CHECK (kind IN ('liveEvent','liveOutput','streamingEndpoint')),
  scope TEXT NOT NULL,             -- 'le:<event key>' or 'se:<endpoint key>'
  resource TEXT NOT NULL,          -- the resource's name path, e.g. 'MyEvent' or 'MyEvent/out1'
  action TEXT NOT NULL,            -- create, update, delete, start, stop, allocate, reset, scale
  status TEXT NOT NULL CHECK (status IN ('InProgress','Succeeded','Failed')),
  error_code TEXT,
  error_message TEXT,
  created TEXT NOT NULL,
  finished TEXT
);
CREATE INDEX operations_scope_in_flight ON operations (scope) WHERE status = 'InProgress';

-- v2: one row per read-write open of the database (appliance start), for diagnostics: a box
-- that restarts often shows it here.
CREATE TABLE opens (
  id INTEGER PRIMARY KEY,
  unix_time INTEGER NOT NULL,
  software_version TEXT NOT NULL
);

-- v2: stream events of live events (getStreamEvents), newest kept, oldest pruned.
CREATE TABLE stream_events (
  id INTEGER PRIMARY KEY,
  live_event_id TEXT NOT NULL REFERENCES live_events (id) ON DELETE CASCADE,
  event_time TEXT NOT NULL,
  event_type TEXT NOT NULL,        -- e.g. 'StreamEvent/BeginIngest'
  event_level TEXT NOT NULL CHECK (event_level IN ('Critical','Error','Warning','Information')),
  data TEXT NOT NULL               -- JSON object
);
CREATE INDEX stream_events_event ON stream_events (live_event_id, id);

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

-- v4: the archive sync outbox (docs/design/sync.md). One job per asset whose archive is copied
-- to a storage target, and one row per object of that copy. A row is written before its
-- upload starts and updated after each committed part, so a restart resumes, never repeats.
CREATE TABLE sync_jobs (
  asset_id TEXT PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
  storage TEXT NOT NULL,            -- the storage account name: a [storage.<name>] of the config
  state TEXT NOT NULL CHECK (state IN ('pending','uploading','synced','failed')),
  live INTEGER NOT NULL DEFAULT 0,  -- 1: the event still records; segments go up as they come
  bytes_total INTEGER NOT NULL DEFAULT 0,
  bytes_done INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,  -- consecutive failed passes (reset by success or retry)
  next_attempt_at TEXT,             -- backoff: not before this time (NULL = now)
  last_error TEXT,
  created TEXT NOT NULL,
  updated TEXT NOT NULL,
  synced_at TEXT,                   -- when the copy was last complete
  evicted_at TEXT                   -- when the disk policy removed the local copy (synced only)
);
CREATE INDEX sync_jobs_state ON sync_jobs (state);

CREATE TABLE sync_objects (
  asset_id TEXT NOT NULL REFERENCES sync_jobs (asset_id) ON DELETE CASCADE,
  key TEXT NOT NULL,                -- object key in the target: <asset container>/<rendition>/<file>
  source TEXT,                      -- file relative to the asset directory; NULL = a generated manifest
  size INTEGER NOT NULL CHECK (size >= 0),
  md5 TEXT,                         -- base64 MD5 of the content (manifests: known when planned)
  state TEXT NOT NULL CHECK (state IN ('pending','uploading','done','failed')),
  bytes_done INTEGER NOT NULL DEFAULT 0,
  upload_id TEXT,                   -- block / multipart upload in progress
  parts TEXT NOT NULL DEFAULT '[]', -- JSON array of the committed part ids, in order
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  PRIMARY KEY (asset_id, key)
) WITHOUT ROWID;
