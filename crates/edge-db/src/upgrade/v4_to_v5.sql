-- Schema 4 -> 5: a live event may take a capture device of the appliance as its input
-- (protocol 'LocalCapture'). SQLite cannot alter a CHECK constraint, so the table is rebuilt
-- under its own name. The upgrade runs with foreign_keys OFF and legacy_alter_table ON, so the
-- REFERENCES of live_outputs and stream_events keep naming live_events (and no cascade fires);
-- PRAGMA foreign_key_check runs before foreign keys are enabled again.
ALTER TABLE live_events RENAME TO live_events_v4;
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
INSERT INTO live_events SELECT * FROM live_events_v4;
DROP TABLE live_events_v4;
