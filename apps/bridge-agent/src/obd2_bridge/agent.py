# SPDX-License-Identifier: GPL-2.0-or-later
"""``obd2-bridge run``: the reader thread and the uploader, sharing the spool and the status."""

import asyncio
import logging
import queue
import signal
import threading

from obd2_bridge.config import AgentConfig
from obd2_bridge.reader import Reader
from obd2_bridge.reader.poller import OutboundFrame
from obd2_bridge.spool import Spool
from obd2_bridge.status import AgentState
from obd2_bridge.upload import Uploader
from obd2_protocol import BridgeClearDtcs

log = logging.getLogger(__name__)


async def run_agent(config: AgentConfig) -> None:
    max_bytes = int(config.spool_max_mb * 1024 * 1024)
    writer = Spool(config.spool, max_bytes=max_bytes)
    reader_spool = Spool(config.spool, max_bytes=max_bytes, writer=False)
    state = AgentState()
    commands: queue.Queue[BridgeClearDtcs] = queue.Queue()
    outbound: queue.Queue[OutboundFrame] = queue.Queue()
    stop_thread = threading.Event()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reader = Reader(config, writer, state, commands, outbound, stop_thread)
    thread = threading.Thread(target=reader.run, name="obd-reader", daemon=True)
    thread.start()
    log.info(
        "obd2-bridge: adapter %s, server %s, spool %s (%d waiting)",
        config.adapter,
        config.api_url,
        config.spool,
        reader_spool.backlog(),
    )
    try:
        await Uploader(config, reader_spool, state, commands, outbound).run(stop)
    finally:
        stop_thread.set()
        await asyncio.to_thread(thread.join, 15)
        reader_spool.close()
        writer.close()
        log.info("obd2-bridge stopped")
