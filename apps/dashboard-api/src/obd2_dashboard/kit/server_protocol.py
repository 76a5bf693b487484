"""uvicorn's HTTP protocol with a limit on how long a client may take to send its headers.

uvicorn closes a connection that stays idle between requests (``timeout_keep_alive``) but
waits for ever on one that sent part of a request's headers, or nothing at all: a few hundred
such sockets hold as many file descriptors and connection slots of a server with no proxy in
front (the demo, a small install). This protocol starts a timer when a connection opens and
when the first byte of each further request arrives, and closes the connection if the
request's headers are not complete within ``header_timeout_s``.
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderTimeoutProtocol(HttpToolsProtocol):
    # Set by the server's start-up (ops.serve) before connections arrive; a class attribute
    # because uvicorn makes the protocol itself, one per connection.
    header_timeout_s: float = 10.0

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm_header_timer()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
