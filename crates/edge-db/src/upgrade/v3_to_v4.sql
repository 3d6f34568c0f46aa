-- Schema 3 -> 4: the archive sync outbox.
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
