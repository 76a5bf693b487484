# SPDX-License-Identifier: GPL-2.0-or-later
"""Uploading the spool: WebSocket with acknowledgements, HTTP as the fallback."""

from obd2_bridge.upload.uploader import Backoff, Uploader, batch_size_for

__all__ = ["Backoff", "Uploader", "batch_size_for"]
