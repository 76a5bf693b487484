# SPDX-License-Identifier: GPL-2.0-or-later
"""obd2-bridge: the in-car agent of obd2-dashboard."""

__version__ = "0.1.0"
