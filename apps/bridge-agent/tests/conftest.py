# SPDX-License-Identifier: GPL-2.0-or-later
# The fixtures live in bridge_support so the tests can import its helpers by a unique name.
from bridge_support import emulator, make_agent, make_simulator, server, simulator

__all__ = ["emulator", "make_agent", "make_simulator", "server", "simulator"]
