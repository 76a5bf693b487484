"""Names of the broker streams the telemetry pipeline uses (the broker adds its key prefix)."""

WORK_STREAM = "work:ingest"
WORK_GROUP = "rollup-workers"
DEADLETTER_STREAM = "deadletter:ingest"
# Entries are one per stored batch; the outbox table backs them up, so trimming loses nothing.
WORK_STREAM_MAXLEN = 100_000
