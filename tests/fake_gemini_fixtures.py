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
