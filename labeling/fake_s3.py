"""A local S3 server for tests and benchmarks: moto's own server in a subprocess on 127.0.0.1.

The real boto3 client talks to it over HTTP like to AWS. `python -m labeling.fake_s3 --port P [--seed FILE]`
first creates the seed's buckets and objects straight in moto's backend (100,000 keys in seconds, where PUTs
over HTTP run at ~150/s on a 2-core machine), then runs `moto_server -H 127.0.0.1 -p P`'s main.
Needs the dev dependency `moto[server]`. Every request is logged (werkzeug) to the server's log file, which
tests read to count GETs.

Seed file: JSON `{"bucket": [[key, size], ...], ...}`; an object's bytes are `object_body(key, size)`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

DUMMY_KEY_ID = "testing"  # moto accepts any credentials; these never leave the test machine
DUMMY_SECRET = "testing"  # noqa: S105
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


def object_body(key: str, size: int) -> bytes:
    """The deterministic bytes of a seeded object."""
    unit = key.encode("utf-8") + b"\n"
    return (unit * (size // len(unit) + 1))[:size]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalS3Server:
    """moto's S3 server as a subprocess: `start()`, `endpoint`, `client()`, `requests()`, `stop()`."""

    def __init__(
        self,
        log_file: str | os.PathLike[str] | None = None,
        seed: Mapping[str, Sequence[tuple[str, int]]] | None = None,
    ) -> None:
        self._own_dir = tempfile.mkdtemp(prefix="fake_s3_")
        self.log_file = Path(log_file) if log_file else Path(self._own_dir) / "moto.log"
        self._seed = seed
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LocalS3Server:
        command = [sys.executable, "-m", "labeling.fake_s3"]
        if self._seed:
            seed_file = Path(self._own_dir) / "seed.json"
            seed_file.write_text(
                json.dumps({bucket: list(map(list, objects)) for bucket, objects in self._seed.items()})
            )
            command += ["--seed", str(seed_file)]
        for _ in range(5):  # a free port can be taken between probing and binding: try another
            self.port = free_port()
            with open(self.log_file, "ab") as log:
                self._process = subprocess.Popen(
                    [*command, "--port", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._own_dir,
                    env={**os.environ, "PYTHONPATH": _package_root()},
                )
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"The local S3 server did not start: see {self.log_file}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError, urllib.error.URLError, ValueError),
                urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2) as answer,  # noqa: S310
            ):
                # moto's own answer (JSON of its backends): another server that took the port between probing
                # and binding (a test's Streamlit app, say) answers a page, and moto then fails to bind
                if isinstance(json.loads(answer.read()), dict) and self._process.poll() is None:
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for setting up test data (dummy credentials, this endpoint)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=DUMMY_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET,
            config=Config(max_pool_connections=32, **config),
        )

    def log_size(self) -> int:
        """Where the request log ends now: pass it to `requests(since=...)` to see only later requests."""
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def requests(self, since: int = 0) -> list[tuple[str, str, int]]:
        """(method, decoded path, status) of every request logged after byte offset `since`."""
        with open(self.log_file, "rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", errors="replace")
        found = []
        for line in _ANSI.sub("", text).splitlines():
            match = _REQUEST.search(line)
            if match:
                found.append((match["method"], unquote(match["path"]), int(match["status"])))
        return found

    def object_gets(self, bucket: str, since: int = 0) -> list[str]:
        """Keys of the GetObject requests on `bucket` after `since` (listings excluded)."""
        prefix = f"/{bucket}/"
        return [
            path[len(prefix) :]
            for method, path, _ in self.requests(since)
            if method == "GET" and path.startswith(prefix) and "?" not in path
        ]


def _package_root() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root


def _seed_backend(seed_file: str) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    seed = json.loads(Path(seed_file).read_text())
    for bucket, objects in seed.items():
        backend.create_bucket(bucket, "us-east-1")
        for key, size in objects:
            backend.put_object(bucket, key, object_body(key, int(size)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's S3 server on 127.0.0.1, optionally pre-seeded.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", help="JSON {bucket: [[key, size], ...]} created before serving")
    args = parser.parse_args(argv)
    if args.seed:
        _seed_backend(args.seed)
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


if __name__ == "__main__":
    main()
