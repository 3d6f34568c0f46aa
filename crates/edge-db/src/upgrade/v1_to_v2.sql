-- Schema 1 -> 2: record each read-write open, and keep live event stream events.
CREATE TABLE opens (
  id INTEGER PRIMARY KEY,
  unix_time INTEGER NOT NULL,
  software_version TEXT NOT NULL
);

CREATE TABLE stream_events (
  id INTEGER PRIMARY KEY,
  live_event_id TEXT NOT NULL REFERENCES live_events (id) ON DELETE CASCADE,
  event_time TEXT NOT NULL,
  event_type TEXT NOT NULL,
  event_level TEXT NOT NULL CHECK (event_level IN ('Critical','Error','Warning','Information')),
  data TEXT NOT NULL
);
CREATE INDEX stream_events_event ON stream_events (live_event_id, id);
