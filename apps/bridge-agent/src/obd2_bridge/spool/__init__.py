# SPDX-License-Identifier: GPL-2.0-or-later
"""The on-disk spool: every sample waits here until the server acknowledged it."""

from obd2_bridge.spool.store import Spool, SpooledSample, SpoolLockedError, seq_floor

__all__ = ["Spool", "SpoolLockedError", "SpooledSample", "seq_floor"]
