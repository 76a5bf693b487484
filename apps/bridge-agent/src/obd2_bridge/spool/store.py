# SPDX-License-Identifier: GPL-2.0-or-later
"""SQLite (WAL) spool of samples, and the per-device ``seq`` that never repeats.

``seq`` is the larger of the persisted high-water mark + 1 and a floor derived from the clock
(epoch ms times 1000): the mark survives restarts, the floor survives losing the spool file, so a
seq is never handed out twice unless both the file is lost and the clock went backwards.

WAL with ``synchronous=NORMAL``: a crash of the agent loses nothing committed; a power cut loses
at most the last commits the OS had not flushed and never corrupts the file.
"""

import fcntl
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    pid TEXT NOT NULL,
    value REAL NOT NULL,
    slow INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samples_slow ON samples (slow, seq);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    pid TEXT NOT NULL,
    value REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


# What one spooled sample costs on disk, row and index (measured: about 72 bytes).
ROW_BYTES = 72


class SpoolLockedError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class SpooledSample:
    seq: int
    ts: int
    pid: str
    value: float


def seq_floor(now_ms: int | None = None) -> int:
    return (now_ms if now_ms is not None else int(time.time() * 1000)) * 1000


class Spool:
    """One connection; make one ``Spool`` per thread. Only one process may write a spool."""

    def __init__(self, path: Path, *, max_bytes: int = 256 * 1024 * 1024, writer: bool = True):
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        if writer:
            self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                os.close(self._lock_fd)
                raise SpoolLockedError(
                    f"spool {path} is in use by another obd2-bridge process"
                ) from exc
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)
        self._mutex = threading.Lock()
        self._next_seq = max(self._meta("seq_hwm", -1) + 1, seq_floor())
        self._appends = 0

    def close(self) -> None:
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    # ---- writing ------------------------------------------------------------------------
    def append(self, rows: list[tuple[int, str, float, bool]]) -> list[int]:
        """Store ``(ts, pid, value, slow)`` rows in one transaction; returns their seqs."""
        if not rows:
            return []
        with self._mutex:
            first = self._next_seq
            seqs = list(range(first, first + len(rows)))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO samples (seq, ts, pid, value, slow) VALUES (?, ?, ?, ?, ?)",
                    [
                        (s, ts, pid, v, int(slow))
                        for s, (ts, pid, v, slow) in zip(seqs, rows, strict=True)
                    ],
                )
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('seq_hwm', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                    (seqs[-1],),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._next_seq = seqs[-1] + 1
            self._appends += 1
        if self._appends % 50 == 0:
            self.enforce_cap()
        return seqs

    def used_bytes(self) -> int:
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    @property
    def max_rows(self) -> int:
        return max(1, self.max_bytes // ROW_BYTES)

    def enforce_cap(self) -> int:
        """Over the cap, drop the oldest slow-PID samples first, then the oldest of any PID.

        The cap counts rows (bytes / ``ROW_BYTES``) rather than pages: deleting scattered slow
        rows frees no whole page at once, so a page count would keep asking for more deletes.
        It drops down to 90 % of the cap so that it does not run on every append.
        """
        rows = self.backlog()
        if rows <= self.max_rows:
            return 0
        excess = rows - self.max_rows * 9 // 10
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            removed = self._db.execute(
                "DELETE FROM samples WHERE seq IN "
                "(SELECT seq FROM samples WHERE slow = 1 ORDER BY seq LIMIT ?)",
                (excess,),
            ).rowcount
            if removed < excess:
                removed += self._db.execute(
                    "DELETE FROM samples WHERE seq IN "
                    "(SELECT seq FROM samples ORDER BY seq LIMIT ?)",
                    (excess - removed,),
                ).rowcount
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
                (removed,),
            )
            self._db.execute("COMMIT")
        return removed

    # ---- reading and acknowledging -------------------------------------------------------
    def oldest(self, limit: int) -> list[SpooledSample]:
        rows = self._db.execute(
            "SELECT seq, ts, pid, value FROM samples ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [SpooledSample(*row) for row in rows]

    def newest(self, limit: int) -> list[SpooledSample]:
        rows = self._db.execute(
            "SELECT seq, ts, pid, value FROM samples ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [SpooledSample(*row) for row in reversed(rows)]

    def delete_range(self, first: int, last: int) -> int:
        """Forget acknowledged samples; new samples always get larger seqs, so a range is exact."""
        with self._mutex:
            cur = self._db.execute("DELETE FROM samples WHERE seq BETWEEN ? AND ?", (first, last))
            return cur.rowcount

    def reject_range(self, first: int, last: int, reason: str) -> int:
        """Move samples the server refused (422) aside, so they neither block nor vanish."""
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO rejected (seq, ts, pid, value, reason) "
                "SELECT seq, ts, pid, value, ? FROM samples WHERE seq BETWEEN ? AND ?",
                (reason[:500], first, last),
            )
            moved = self._db.execute(
                "DELETE FROM samples WHERE seq BETWEEN ? AND ?", (first, last)
            ).rowcount
            self._db.execute("COMMIT")
            return moved

    def backlog(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM samples").fetchone()[0])

    def dropped(self) -> int:
        return self._meta("dropped", 0)

    def rejected(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM rejected").fetchone()[0])
