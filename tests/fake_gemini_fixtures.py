"""One fake Gemini server per test module, clean for each test: import with
`from tests.fake_gemini_fixtures import *  # noqa: F403`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labeling.fake_gemini import FakeGemini

__all__ = ["fake", "server"]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGemini) -> Iterator[FakeGemini]:
    """The shared server, clean for each test and with default settings restored afterwards."""
    server.reset()
    yield server
    server.reset()
    server.latency_s, server.rpm_quota, server.hang_s, server.thoughts_tokens = 0.0, 0, 30.0, None
    server.valid_keys = server.known_models = None
    server.bad_key_status, server.retry_delay_s, server.cached_tokens, server.max_schema_states = 400, 1.0, 0, 0
    server.batch_pending_s, server.batch_running_s, server.max_concurrent_batches = 1.0, 2.0, 100
    server.max_inline_batch_bytes = 20 * 1024**2
    server.max_file_bytes, server.max_storage_bytes = 2 * 1024**3, 20 * 1024**3
    server.log_path = None
