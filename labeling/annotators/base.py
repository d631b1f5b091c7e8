"""The annotator interface: what a model says about one image, and the three ways a call can fail.

- `RetryableError`: try the same request again later (quota, overload, 5xx, timeout, transport); it may
  carry the delay the server asked for.
- `ResponseFailure`: the answer cannot be used for this image (blocked, truncated, invalid JSON, categories
  outside the list). Recorded as a per-image failure with its `kind`, retried only on "retry failed".
- `AnnotatorError` (from labeling.errors): the whole run must stop (bad key, unknown model, invalid request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from labeling.categories import Category

if TYPE_CHECKING:
    from labeling.annotators.prompts import Prompt


@dataclass(frozen=True)
class Usage:
    """Tokens of one request as billed: thinking tokens bill as output."""

    prompt: int = 0
    candidates: int = 0
    thoughts: int = 0
    cached: int = 0  # of the prompt tokens, how many were implicit-cache hits

    @property
    def output(self) -> int:
        return self.candidates + self.thoughts

    def cost(self, price: dict[str, float] | None) -> float:
        """USD for these tokens at `price` (USD per 1M tokens: input, output, cached); 0 when the price is unknown."""
        if price is None:
            return 0.0
        cached = min(self.cached, self.prompt)
        fresh = self.prompt - cached
        return (
            fresh * price["input"] + cached * price.get("cached", price["input"]) + self.output * price["output"]
        ) / 1_000_000

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt + other.prompt,
            self.candidates + other.candidates,
            self.thoughts + other.thoughts,
            self.cached + other.cached,
        )


@dataclass(frozen=True)
class Annotation:
    """One successful answer: a description and/or categories, with what it cost."""

    kind: str  # fused | describe | categorize
    model: str
    prompt_version: str
    description: dict[str, Any] | None
    categories: list[str] | None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0

    @property
    def summary(self) -> str | None:
        if not self.description:
            return None
        summary = self.description.get("summary")
        return summary if isinstance(summary, str) else None


class RetryableError(Exception):
    """A transient failure: the same request may succeed later."""

    def __init__(
        self,
        message: str,
        kind: str,
        retry_after: float | None = None,
        usage: Usage | None = None,
        cost_usd: float = 0.0,
    ) -> None:
        super().__init__(message)
        # quota | daily_quota | overloaded | server_error | cancelled | timeout | transport | empty
        self.kind = kind
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said
        self.usage = usage or Usage()  # an empty answer is still billed
        self.cost_usd = cost_usd


class ResponseFailure(Exception):
    """The model answered, but not with something usable for this image; the request was still billed."""

    def __init__(self, message: str, kind: str, usage: Usage | None = None, cost_usd: float = 0.0) -> None:
        super().__init__(message)
        self.kind = kind  # safety | prompt_blocked | max_tokens | invalid_json | wrong_shape | off_list | ...
        self.usage = usage or Usage()
        self.cost_usd = cost_usd


class Annotator(Protocol):
    """Describes and categorizes images. Implementations are safe to share between worker threads."""

    model: str
    prompt_version: str
    simulated: bool
    price: dict[str, float] | None  # USD per 1M tokens (input, output, cached); None: the model has no price
    price_known: bool

    def notices(self) -> list[str]:
        """One-time messages for the user (say, a fallback the annotator took), oldest first."""
        ...

    def drain_extra(self) -> tuple[int, Usage, float]:
        """Requests the annotator sent on its own (probes, re-sends) since the last call: count, usage, cost."""
        ...

    def describe(self, image: bytes, mime_type: str) -> Annotation:
        """The structured description of an image (no categories)."""
        ...

    def categorize(
        self, description: dict[str, Any], categories: Sequence[Category], max_categories: int
    ) -> Annotation:
        """Categories from a stored description alone; no image is sent."""
        ...

    def describe_and_categorize(
        self, image: bytes, mime_type: str, categories: Sequence[Category], max_categories: int
    ) -> Annotation:
        """Description and categories in one request."""
        ...

    def ask(self, prompt: Prompt) -> tuple[Any, Usage]:
        """A text-only request answered as JSON in `prompt.schema` (say, category suggestions)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
