"""The harness's own promises: what a viewer opens, it closes, whatever the server does."""

import asyncio
import gc
import socket
import ssl
import threading
import warnings
from pathlib import Path

from obd2_testkit.stack.harness import Endpoint, abort_connection
from obd2_testkit.stack.nginx import make_certificate


def _tls_server_that_never_answers_close_notify(
    directory: Path, held: list[ssl.SSLSocket]
) -> tuple[socket.socket, Path]:
    """A TLS server that sends one line and then never reads again, as nginx does on a stream it
    is still proxying: a client's close_notify gets no answer."""
    cert, key = make_certificate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        with listener:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            connection = context.wrap_socket(raw, server_side=True)
            held.append(connection)
            connection.sendall(b"HTTP/1.1 200 OK\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return listener, cert


def test_a_closed_viewer_connection_leaves_no_socket_open(tmp_path: Path) -> None:
    held: list[ssl.SSLSocket] = []
    listener, cert = _tls_server_that_never_answers_close_notify(tmp_path, held)
    endpoint = Endpoint.of(f"https://127.0.0.1:{listener.getsockname()[1]}", cert)

    async def view_and_leave() -> None:
        reader, writer = await asyncio.open_connection(
            endpoint.host, endpoint.port, ssl=endpoint.ssl
        )
        await reader.readline()
        await abort_connection(writer)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            asyncio.run(view_and_leave())
            gc.collect()
        finally:
            listener.close()
            for connection in held:  # the server's side, which the server never closes
                connection.close()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
