"""Names of the broker streams the telemetry pipeline uses (the broker adds its key prefix)."""

WORK_STREAM = "work:ingest"
WORK_GROUP = "rollup-workers"
DEADLETTER_STREAM = "deadletter:ingest"
# Entries are one per stored batch; the outbox table backs them up, so trimming loses nothing.
WORK_STREAM_MAXLEN = 100_000
# Entries are only a prompt: one older than this is done with (acknowledged) or owed to a dead
# worker, and the sweep does the work of every outbox row whose entry is gone. The age bound
# keeps Redis's share at about ingest rate x 2 min, whatever WORK_STREAM_MAXLEN allows.
WORK_STREAM_MAX_AGE_MS = 120_000
