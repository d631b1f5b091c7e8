"""Which annotator a run uses: one table of providers, one factory, chosen by the `provider` setting.

Like llm's model registry, the built-in provider goes through the same entry as any later one: a name, what
it needs before it can answer (an API key), and where its implementation lives. Nothing here imports an SDK;
`create_annotator` loads the provider's module only when an annotator is made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labeling.errors import ConfigError

if TYPE_CHECKING:
    from labeling.annotators.base import Annotator
    from labeling.settings import Settings


@dataclass(frozen=True)
class Provider:
    name: str
    title: str  # as the pages and the CLI name it
    implementation: str  # "module:Class"; the class takes (settings, model=, max_workers=, simulated=)
    key_missing_hint: str  # what to do when it has no key
    has_key: Callable[[Settings], bool]

    def key_status(self, settings: Settings) -> str:
        """One line for the sidebar and the CLI: whether the key is set (never the key)."""
        return f"{self.title} API key: " + ("set" if self.has_key(settings) else f"not set ({self.key_missing_hint})")


PROVIDERS: dict[str, Provider] = {
    "gemini": Provider(
        "gemini",
        "Gemini",
        "labeling.annotators.gemini:GeminiAnnotator",
        "GEMINI_API_KEY or gemini_api_key in config.yaml",
        lambda s: bool(s.gemini_api_key),
    ),
}


def provider_for(settings: Settings) -> Provider:
    """The provider the settings name; ConfigError listing the known ones otherwise."""
    try:
        return PROVIDERS[settings.provider]
    except KeyError:
        raise ConfigError(
            f"Unknown provider {settings.provider!r}: set provider to one of {', '.join(PROVIDERS)}."
        ) from None


def create_annotator(
    settings: Settings, *, model: str | None = None, workers: int = 1, simulated: bool = False
) -> Annotator:
    """An annotator of the configured provider for `model` (default: caption_model), sized for `workers`."""
    module, _, name = provider_for(settings).implementation.partition(":")
    factory: Any = getattr(importlib.import_module(module), name)
    annotator: Annotator = factory(settings, model=model, max_workers=workers, simulated=simulated)
    return annotator
