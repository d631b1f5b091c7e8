"""The served app answers its WebSocket only for its own host names, so a DNS-rebinding page cannot drive it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.browser import served_app

pytestmark = pytest.mark.browser


def _upgrade(port: int, host: str) -> str:
    """The status line the app answers to a WebSocket upgrade of its session stream with this Host header."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(
            (
                f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        return connection.recv(200).split(b"\r\n")[0].decode()


def test_only_loopback_host_names_reach_the_app(db_path: Path, tmp_path: Path) -> None:
    with served_app(db_path, tmp_path / "cache") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        answers = {
            host: _upgrade(port, host)
            for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port}", f"localhost:{port}", "[::1]")
        }
    assert answers == {
        "evil.example": "HTTP/1.1 403 Forbidden",
        f"evil.example:{port}": "HTTP/1.1 403 Forbidden",
        f"127.0.0.1:{port}": "HTTP/1.1 101 Switching Protocols",
        f"localhost:{port}": "HTTP/1.1 101 Switching Protocols",
        "[::1]": "HTTP/1.1 101 Switching Protocols",
    }


def test_a_shared_app_names_its_hosts_in_the_environment(db_path: Path, tmp_path: Path) -> None:
    """The README's sharing recipe: STREAMLIT_SERVER_ALLOWED_HOSTS lists the names people use to reach it."""
    env = {"STREAMLIT_SERVER_ALLOWED_HOSTS": "lab.example.com localhost"}
    with served_app(db_path, tmp_path / "cache", env=env) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        assert _upgrade(port, f"lab.example.com:{port}") == "HTTP/1.1 101 Switching Protocols"
        assert _upgrade(port, "evil.example") == "HTTP/1.1 403 Forbidden"


def _picture_status(port: int, host: str) -> str:
    """The status line of a picture request with this Host header (image 1 need not exist: 404 is an answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(f"GET /pictures/thumb/1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return connection.recv(200).split(b"\r\n")[0].decode()


def test_pictures_answer_only_the_apps_host_names(db_path: Path, tmp_path: Path) -> None:
    """The picture routes beside Streamlit keep the same rule: a rebinding page cannot read the images."""
    with served_app(db_path, tmp_path / "cache") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        refused = _picture_status(port, f"evil.example:{port}")
        answered = _picture_status(port, f"127.0.0.1:{port}")
    assert refused == "HTTP/1.1 403 Forbidden"
    assert answered != refused and answered.split()[1] in {"200", "404", "503"}
