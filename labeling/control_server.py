"""The app's control interface: how a `labeling` command runs through the app that holds its database.

HTTP on 127.0.0.1 only, on a random port, published with a random token in `<db>.app` (this user only, see
labeling.presence). Every request needs the token; any request a browser sends (it carries an Origin header)
and any Host but the loopback address are refused, so no web page can drive it. Routes:
- GET /ping: the app's PID and database;
- POST /commands: run a command (JSON: argv, cwd, env, tty flags); the answer streams one JSON event a line
  ({"stream": "out"|"err", "text"}, {"read": true}, then {"exit": code}) until the command ends;
- POST /commands/<id>/interrupt: Ctrl+C at the caller; POST /commands/<id>/input: a line the caller typed.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from labeling import hosted
from labeling.presence import AppLink

if TYPE_CHECKING:
    from labeling.jobs import JobManager
    from labeling.store import Store

log = logging.getLogger(__name__)

PROTOCOL = 1
_VERBS = ("interrupt", "input")
_MAX_BODY = 1 << 20  # a command line and its environment; anything bigger is not one


class ControlServer:
    """Serves commands for one database while the app holds it; `stop()` withdraws the link."""

    def __init__(self, db_path: str, store: Store, manager: Callable[[], JobManager]) -> None:
        self.db_path = db_path
        self.store = store
        self.manager = manager
        self.sessions: dict[int, hosted.Session] = {}
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        self.link: AppLink | None = None

    def start(self) -> ControlServer:
        hosted.install_streams()
        try:
            self.link = AppLink.publish(self.db_path, self.port)
        except OSError:
            self._http.server_close()
            raise
        threading.Thread(target=self._http.serve_forever, name="control-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.link is not None:
            self.link.withdraw()
        self._http.shutdown()
        self._http.server_close()

    def begin(self, caller: hosted.Caller) -> hosted.Session:
        session = hosted.Session(caller, self.store, self.manager)
        with self._lock:
            self.sessions[session.id] = session
        return session.start()

    def end(self, session: hosted.Session) -> None:
        with self._lock:
            self.sessions.pop(session.id, None)

    def session(self, session_id: int) -> hosted.Session | None:
        with self._lock:
            return self.sessions.get(session_id)


def _joined(
    events: queue.Queue[dict[str, Any]], event: dict[str, Any], limit: int = 1 << 16
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """`event` with the writes to the same stream already queued behind it (one line on the wire, not one per
    print: a progress bar writes many), and the first queued event that is not one of them."""
    if "stream" not in event:
        return event, None
    parts, size = [event["text"]], len(event["text"])
    while size < limit:
        try:
            following = events.get_nowait()
        except queue.Empty:
            break
        if following.get("stream") != event["stream"]:
            return {"stream": event["stream"], "text": "".join(parts)}, following
        parts.append(following["text"])
        size += len(following["text"])
    return {"stream": event["stream"], "text": "".join(parts)}, None


def _handler_for(server: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "labeling-control"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("control %s", format % args)  # the path only: the token travels in a header

        def _refuse(self, code: int, message: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"error": message}).encode())

        def _allowed(self) -> bool:
            if self.headers.get("Origin") is not None or self.headers.get("Sec-Fetch-Site") is not None:
                self._refuse(403, "browser requests are refused")
                return False
            if self.headers.get("Host") not in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
                self._refuse(403, "only 127.0.0.1 is served")
                return False
            token = server.link.token if server.link else ""
            given = self.headers.get("Authorization", "")
            if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                self._refuse(401, "a valid token is required")
                return False
            return True

        def _body(self) -> dict[str, Any] | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._refuse(413, "request too large")
                return None
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._refuse(400, "the body must be a JSON object")
                return None
            return body

        def do_GET(self) -> None:
            if not self._allowed():
                return
            if self.path != "/ping":
                self._refuse(404, "no such route")
                return
            self._json({"protocol": PROTOCOL, "pid": os.getpid(), "db": server.db_path})

        def do_POST(self) -> None:
            if not self._allowed():
                return
            body = self._body()
            if body is None:
                return
            parts = self.path.strip("/").split("/")
            if parts == ["commands"]:
                self._run(body)
            elif len(parts) == 3 and parts[0] == "commands" and parts[1].isdigit() and parts[2] in _VERBS:
                session = server.session(int(parts[1]))
                if session is None:
                    self._refuse(404, "no such command")
                elif parts[2] == "interrupt":
                    session.interrupt()
                    self._json({"ok": True})
                else:
                    line = body.get("line")  # "" (or none) is the end of the caller's input, as a file says it
                    session.answer(line if isinstance(line, str) and line else None)
                    self._json({"ok": True})
            else:
                self._refuse(404, "no such route")

        def _json(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _run(self, body: dict[str, Any]) -> None:
            if body.get("protocol") != PROTOCOL:
                self._refuse(409, f"this app speaks protocol {PROTOCOL}: use the labeling command of its version")
                return
            try:
                caller = hosted.Caller.from_json(body)
            except ValueError as exc:
                self._refuse(400, str(exc))
                return
            session = server.begin(caller)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Connection", "close")
            self.end_headers()
            self._send({"id": session.id})
            attached = True
            pending: dict[str, Any] | None = None
            try:
                while True:
                    try:
                        event, pending = _joined(session.events, pending or session.events.get(timeout=5))
                    except queue.Empty:
                        event = {"alive": True}  # a line now and then: a vanished caller shows as a failed write
                    if attached:
                        attached = self._send(event)
                    if not attached and "read" in event:
                        session.answer(None)  # nobody is left to type: the input has ended
                    if "exit" in event:
                        break
            finally:
                server.end(session)

        def _send(self, event: dict[str, Any]) -> bool:
            """False once the caller is gone: the command keeps running in the app, its output dropped."""
            try:
                self.wfile.write(json.dumps(event).encode() + b"\n")
                self.wfile.flush()
            except OSError:
                return False
            return True

    return Handler
