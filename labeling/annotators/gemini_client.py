"""The one place that builds a google-genai Client: API version, base URL, timeout and connection pool.

Every caller (captioning, category suggestions, the connection check) goes through `make_client`, so a request
never reaches the SDK's default `v1`, which refuses system instructions and structured output.
"""

from __future__ import annotations

from typing import Any

import httpx2
from google import genai
from google.genai import types

from labeling.annotators.models import family_for
from labeling.errors import AnnotatorError
from labeling.settings import Settings

KEY_HELP = (
    "set GEMINI_API_KEY (or gemini_api_key in config.yaml) to a valid key from https://aistudio.google.com/apikey"
)


def http_options(settings: Settings, workers: int = 1) -> types.HttpOptions:
    """Options for a client shared by `workers` threads."""
    return types.HttpOptions(
        base_url=settings.gemini_base_url or None,
        api_version=settings.gemini_api_version,
        # In milliseconds; without one a stalled call would hang for ever. Flex answers may take minutes.
        timeout=int(settings.effective_timeout_seconds * 1000) or None,
        # The default pool keeps 20 connections alive: size it for every worker plus headroom.
        client_args={
            "limits": httpx2.Limits(
                max_connections=max(100, workers * 2), max_keepalive_connections=max(20, workers * 2)
            )
        },
    )


def make_client(settings: Settings, workers: int = 1) -> genai.Client:
    """A client for the configured key, endpoint and API version; keep it referenced while calls run."""
    if not settings.gemini_api_key:
        raise AnnotatorError(
            f"No Gemini API key is set: {KEY_HELP}. To try the app without one, use "
            '"Create an example project" on the Run page (simulated).'
        )
    return genai.Client(api_key=settings.gemini_api_key, http_options=http_options(settings, workers))


def generation_config(settings: Settings, model: str, **fields: Any) -> types.GenerateContentConfig:
    """A JSON-answer config for `model`: its family's thinking and temperature, the tier, plus `fields`."""
    family, _ = family_for(model)
    base: dict[str, Any] = {
        "response_mime_type": "application/json",
        "candidate_count": 1,
        "temperature": family.temperature,
        "thinking_config": types.ThinkingConfig(**family.thinking) if family.thinking else None,
        "service_tier": types.ServiceTier(settings.service_tier),
        # No tools are ever sent: with automatic function calling on, the SDK deep-copies the whole config
        # (response schema included) on every request, about 5 ms of CPU each.
        "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
    }
    return types.GenerateContentConfig(**{**base, **fields})
