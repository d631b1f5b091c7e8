"""HTTP plumbing: a threading server with a deep backlog and a keep-alive request handler."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast

from labeling.fake_gemini.replies import Reply

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What the handler needs from the fake: an answer per request, and to know open connections."""

    def handle(self, path: str, headers: Mapping[str, str], body: bytes, method: str = "POST") -> Reply: ...

    def track(self, conn: socket.socket, add: bool) -> None: ...


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that survives bursts and never waits for idle connections on close."""

    request_queue_size = 1024  # the default backlog of 5 drops bursts of 32+ connections
    daemon_threads = True
    block_on_close = False  # stop() must not wait for idle keep-alive connections
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
        super().__init__(address, Handler)
        self.backend = backend

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is routine here (timeouts, stop()): log, never print a traceback.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    """Reads a request, asks the backend for the reply, writes it (or drops the connection)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    timeout = 300  # idle keep-alive connections give their thread back eventually
    wbufsize = -1  # headers and body leave in one write (flushed by handle_one_request)

    @property
    def _backend(self) -> Backend:
        return cast(Server, self.server).backend

    def setup(self) -> None:
        super().setup()
        # Without it, Nagle's algorithm and the client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._backend.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self._backend.track(self.connection, add=False)

    def version_string(self) -> str:
        return "scaffolding on HTTPServer2"  # what Google's front end calls itself

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._send(self._backend.handle(self.path, headers, body, method))

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()  # the blank line after the last chunk
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, reply: Reply) -> None:
        if reply.status == 0:
            self.close_connection = True  # a hung request ends with the connection dropped, unanswered
            if reply.reset:
                self._reset()
            return
        if reply.content is not None:
            payload = reply.content
        else:
            payload = json.dumps(reply.body, ensure_ascii=False, indent=2).encode("utf-8")
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) before the answer: nothing left to tell it
            self.close_connection = True

    def _reset(self) -> None:
        """Close with SO_LINGER 0, so the client gets a TCP RST rather than an orderly FIN."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
