"""A command on a database the app holds runs through the app (labeling.control_server), not against the lock.

The app left its port and token beside the database (labeling.presence). The command sends its arguments,
folder and environment, prints what the app streams back, answers a confirmation prompt, and exits with the
command's exit code. Ctrl+C is passed on (the job stops after its requests in flight, as it does alone); a second
Ctrl+C leaves at once and the job goes on in the app. If the app dies meanwhile, the command says so and what to do.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import sys
import threading
from collections.abc import Sequence
from typing import Any

from labeling import hosted, presence
from labeling.cli import context
from labeling.control_server import PROTOCOL

# Commands that never touch the database run here: a server of their own, or a check of this machine.
LOCAL_COMMANDS = frozenset({"fake-gemini", "check"})
_STOPPED = 1  # the exit status when the app went away under the command


def through_app(args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """The command's exit code if the app on its database ran it; None when no app holds the database."""
    if args.command in LOCAL_COMMANDS or hosted.current() is not None:
        return None
    link = presence.find_app(context.settings(args).db_path)
    if link is None or not _answers(link):
        return None
    return _Delegation(link, list(argv)).run()


def _connection(link: presence.AppLink, timeout: float | None = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", link.port, timeout=timeout)


def _headers(link: presence.AppLink) -> dict[str, str]:
    return {"Authorization": f"Bearer {link.token}", "Content-Type": "application/json"}


def _answers(link: presence.AppLink) -> bool:
    """The app behind the link is up and serves this database (a stale link of a reused PID is not)."""
    try:
        connection = _connection(link, timeout=5)
        connection.request("GET", "/ping", headers=_headers(link))
        response = connection.getresponse()
        body = json.loads(response.read() or b"{}")
        connection.close()
    except (OSError, ValueError, http.client.HTTPException):
        return False
    same = body.get("pid") == link.pid and body.get("db") == link.db and body.get("protocol") == PROTOCOL
    return response.status == 200 and same


def _post(link: presence.AppLink, path: str, payload: dict[str, Any]) -> None:
    try:
        connection = _connection(link)
        connection.request("POST", path, body=json.dumps(payload), headers=_headers(link))
        connection.getresponse().read()
        connection.close()
    except (OSError, http.client.HTTPException):
        pass  # the stream that follows says whether the app is still there


class _Delegation:
    def __init__(self, link: presence.AppLink, argv: list[str]) -> None:
        self.link = link
        self.argv = argv
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.session: int | None = None

    def run(self) -> int:
        body = {
            "protocol": PROTOCOL,
            "argv": self.argv,
            "cwd": os.getcwd(),
            "env": hosted.caller_env(os.environ),
            "stdin_tty": sys.stdin.isatty(),
            "stdout_tty": sys.stdout.isatty(),
            "stderr_tty": sys.stderr.isatty(),
        }
        threading.Thread(target=self._read, args=(body,), name="app-stream", daemon=True).start()
        interrupted = passed_on = False
        while True:
            try:
                code = self._next(interrupted)
                if interrupted and not passed_on and self.session is not None:
                    passed_on = True  # a Ctrl+C before the app named the command: passed on now
                    _post(self.link, f"/commands/{self.session}/interrupt", {})
            except KeyboardInterrupt:
                if interrupted:
                    print("\nLeft at once: the app finishes stopping the command (see its Run page).", file=sys.stderr)
                    return 130
                interrupted = True
                if self.session is not None:
                    passed_on = True
                    _post(self.link, f"/commands/{self.session}/interrupt", {})
                continue
            if code is not None:
                return code

    def _next(self, interrupted: bool) -> int | None:
        """Handle one event from the app; the exit code once the command has ended."""
        event = self.events.get()
        if event is None:
            return self._app_gone()
        if "id" in event:
            self.session = int(event["id"])
        elif "stream" in event:
            out = sys.stdout if event["stream"] == "out" else sys.stderr
            out.write(str(event.get("text", "")))
            out.flush()
        elif "read" in event:  # after a Ctrl+C nobody types: a prompt asked before it reads the end of input
            line = "" if interrupted else sys.stdin.readline()
            _post(self.link, f"/commands/{self.session}/input", {"line": line})
        elif "exit" in event:
            return int(event["exit"])
        elif "error" in event:
            print(f"error: the labeling app refused the command: {event['error']}", file=sys.stderr)
            return 1
        return None

    def _read(self, body: dict[str, Any]) -> None:
        """Put each streamed event on the queue, then None: the main thread stays free for Ctrl+C."""
        try:
            connection = _connection(self.link, timeout=None)
            connection.request("POST", "/commands", body=json.dumps(body), headers=_headers(self.link))
            response = connection.getresponse()
            if response.status != 200:
                self.events.put({"error": json.loads(response.read() or b"{}").get("error", response.reason)})
                return
            for line in response:
                self.events.put(json.loads(line))
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            self.events.put(None)

    def _app_gone(self) -> int:
        print(
            f"error: the labeling app (PID {self.link.pid}) stopped while it ran this command. Its progress is "
            "saved in the database: run the same command again to resume (it runs here while the app is not "
            "running, or through the app once it is back).",
            file=sys.stderr,
        )
        return _STOPPED
