# SPDX-License-Identifier: GPL-2.0-or-later
from pathlib import Path

import pytest

from obd2_bridge.spool import Spool, SpoolLockedError, seq_floor
from obd2_bridge.spool.store import ROW_BYTES


def test_seq_never_repeats_across_reopen_and_spool_loss(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    first = spool.append([(1_700_000_000_000, "RPM", 800.0, False)] * 3)
    spool.delete_range(first[0], first[-1])  # acknowledged: the rows are gone, the mark stays
    spool.close()
    spool = Spool(path)
    second = spool.append([(1_700_000_000_000, "RPM", 800.0, False)])
    spool.close()
    assert second[0] > first[-1]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    spool = Spool(path)  # the file is lost: the clock floor still moves past every old seq
    third = spool.append([(1_700_000_000_000, "RPM", 800.0, False)])
    spool.close()
    assert third[0] > second[0]
    assert third[0] >= seq_floor() - 60_000_000


def test_a_second_writer_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    with pytest.raises(SpoolLockedError, match="in use by another"):
        Spool(tmp_path / "spool.sqlite3")
    spool.close()


def _fill(spool: Spool) -> None:
    for i in range(40):
        spool.append(
            [(1_700_000_000_000 + i, "COOLANT_TEMP", 80.0, True)]
            + [(1_700_000_000_000 + i, "RPM", 800.0 + j, False) for j in range(50)]
        )


def test_over_the_cap_the_oldest_slow_samples_go_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=10**9)
    for i in range(400):
        spool.append(
            [(1_700_000_000_000 + i, "COOLANT_TEMP", 80.0, True)]
            + [(1_700_000_000_000 + i, "RPM", 800.0 + j, False) for j in range(5)]
        )
    slow_seqs = [s.seq for s in spool.oldest(10**6) if s.pid == "COOLANT_TEMP"]
    spool.max_bytes = ROW_BYTES * 2399  # one row over the cap: it drops to 90 %
    dropped = spool.enforce_cap()
    remaining = spool.oldest(10**6)
    assert dropped == 2400 - 2399 * 9 // 10
    assert spool.dropped() == dropped
    assert sum(1 for s in remaining if s.pid == "RPM") == 2000
    slow = [s.seq for s in remaining if s.pid == "COOLANT_TEMP"]
    assert slow == slow_seqs[dropped:]  # the oldest slow samples went
    assert spool.enforce_cap() == 0  # under the cap now: nothing more goes
    spool.close()


def test_when_slow_samples_are_not_enough_the_oldest_fast_ones_go(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=10**9)
    _fill(spool)
    newest = spool.newest(1)[0].seq
    spool.max_bytes = ROW_BYTES * 1000
    dropped = spool.enforce_cap()
    remaining = spool.oldest(10**6)
    assert len(remaining) == 900
    assert spool.dropped() == dropped == 2040 - 900
    assert not [s for s in remaining if s.pid == "COOLANT_TEMP"]
    assert remaining[-1].seq == newest  # the newest data stays
    spool.close()


def test_rejected_samples_are_kept_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    seqs = spool.append([(1_700_000_000_000, "RPM", 1.0, False)] * 5)
    assert spool.reject_range(seqs[0], seqs[2], "invalid") == 3
    assert spool.backlog() == 2
    assert spool.rejected() == 3
    assert [s.seq for s in spool.newest(10)] == seqs[3:]
    spool.close()
