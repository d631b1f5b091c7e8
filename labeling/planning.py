"""Planning a run: what to send (the work list derived from the database) and what it is expected to cost.

The runner (labeling.jobs) and re-categorizing share it: the same work list, the same per-request token
figures (past averages of the model, else typical sizes), the same prices.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labeling.annotators import prompts
from labeling.annotators.models import family_for
from labeling.categories import Category
from labeling.errors import ConfigError
from labeling.records import Dataset
from labeling.settings import Settings
from labeling.store import Store
from labeling.taxonomy import ensure_categories
from labeling.vocabulary import MODES
from labeling.wording import count

EXECUTORS = ("sync", "batch")


@dataclass(frozen=True)
class JobRequest:
    """What to run. Unset numbers come from the settings."""

    datasets: tuple[str, ...]
    mode: str = "fused"  # fused | two-pass | categorize
    model: str | None = None
    num_workers: int | None = None
    requests_per_minute: int | None = None
    retry_failed: bool = False  # only images with open failures
    resume_run: int | None = None  # continue this run (its failures are not retried)
    image_ids: tuple[int, ...] | None = None  # only these images (re-categorize after a list change)
    executor: str = "sync"  # sync: worker threads on the synchronous API | batch: Gemini Batch Mode

    def check(self) -> None:
        if not self.datasets:
            raise ConfigError("Choose at least one dataset to run on.")
        if self.mode not in MODES:
            raise ConfigError(f"Unknown mode {self.mode!r}: use one of {', '.join(MODES)}.")
        if self.num_workers is not None and self.num_workers < 1:
            raise ConfigError("The number of workers must be 1 or more.")
        if self.requests_per_minute is not None and self.requests_per_minute < 0:
            raise ConfigError("The request rate must be 0 (no limit) or more.")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"Unknown executor {self.executor!r}: use one of {', '.join(EXECUTORS)}.")
        if self.executor == "batch" and self.mode == "two-pass":
            # A batch answers within hours: a second pass would wait on the first; fused asks both at once.
            raise ConfigError(
                "Batch Mode runs fused (one request per image) or categorize: use --mode fused with --batch."
            )

    @property
    def batch(self) -> bool:
        return self.executor == "batch"


@dataclass(slots=True)  # a million of them in a big run: no per-item __dict__
class WorkItem:
    """One image a run still has to send, with what it needs."""

    image_id: int
    dataset_id: int
    name: str
    location: str | None
    needs: str  # fused | describe | categorize
    description: str | None


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to send and cost, before it starts."""

    images: int
    requests: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    model: str
    basis: str  # where the per-request token figures come from
    without_description: int = 0  # categorize mode: images that need describing first
    price_known: bool = True
    service_tier: str = "standard"
    text_only: bool = False  # re-categorizing: no image goes out

    @property
    def cost_text(self) -> str:
        return f"${self.cost_usd:,.4f}" if self.price_known else price_unknown(self.model)

    def line(self) -> str:
        tier = f", {self.service_tier} tier" if self.service_tier != "standard" else ""
        cost = f"about {self.cost_text}" if self.price_known else self.cost_text
        requests = count(self.requests, "text-only request" if self.text_only else "request")
        return (
            f"{count(self.images, 'image')}, {requests}, about {self.tokens_in:,} input + "
            f"{self.tokens_out:,} output tokens, {cost} with {self.model}{tier} ({self.basis})."
        )


def price_unknown(model: str) -> str:
    """What the estimate and the run say instead of a cost when the model has no price."""
    return f"price unknown: set prices.{model} in config.yaml"


def _dataset_rows(store: Store, names: Sequence[str]) -> list[Dataset]:
    return [store.dataset(name) for name in dict.fromkeys(names)]


def work_items(frame: pd.DataFrame) -> list[WorkItem]:
    def text(value: Any) -> str | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)

    items = []
    for row in frame.to_dict("records"):
        name, location = str(row["name"]), text(row["location"])
        items.append(
            WorkItem(
                int(row["image_id"]),
                int(row["dataset_id"]),
                name,
                name if location == name else location,  # usually the same text: keep it once
                sys.intern(str(row["needs"])),
                text(row["description"]),
            )
        )
    return items


def plan(store: Store, request: JobRequest, *, simulated: bool = False) -> tuple[list[Dataset], pd.DataFrame, int]:
    """The datasets, the work list and the category-list version a run on `request` would use."""
    request.check()
    rows = _dataset_rows(store, request.datasets)
    ensure_categories(store)
    list_version = store.category_list_version()
    work = store.work_list(
        [r.id for r in rows],
        request.mode,
        prompts.PROMPT_VERSION,
        list_version,
        skip_failed_in_run=request.resume_run,
        only_failed=request.retry_failed,
        simulated=simulated,
        image_ids=request.image_ids,
    )
    in_flight = store.images_in_flight(except_run=request.resume_run)
    if in_flight:  # another batch run's jobs will answer these: sending them again would pay twice
        work = work[~work["image_id"].isin(in_flight)].reset_index(drop=True)
    return rows, work, list_version


# Typical tokens per request when the database has no history for the model yet: prompt text (from the
# prompt's length), one image as the model family bills it, and a description of about 250 tokens.
_TYPICAL_OUTPUT = {"fused": 270, "describe": 250, "categorize": 8}
_TYPICAL_IMAGE = (768, 576)  # a 4:3 picture at the default image_max_size


def typical_image_tokens(settings: Settings, model: str) -> int:
    """Input tokens of one prepared image for `model` at the configured media resolution."""
    family, _ = family_for(model)
    side = settings.image_max_size
    width, height = side, round(side * _TYPICAL_IMAGE[1] / _TYPICAL_IMAGE[0])
    return family.image_tokens(settings.media_resolution, width, height)


def _typical_input(
    kind: str,
    categories: Sequence[Category],
    max_categories: int,
    image_tokens: int,
    descriptions: Sequence[dict[str, Any]] = (),
) -> int:
    """~4 characters a token of the prompt text, plus the image; categorize prompts carry a description."""
    if kind == "fused":
        prompt = prompts.fused_prompt(categories, max_categories)
        return math.ceil(len(prompt.system + prompt.text) / 4) + image_tokens
    if kind == "describe":
        prompt = prompts.describe_prompt()
        return math.ceil(len(prompt.system + prompt.text) / 4) + image_tokens
    sizes = [
        len(p.system + p.text)
        for p in (
            prompts.categorize_prompt(d, categories, max_categories)
            for d in (descriptions or [{"summary": "x" * 1000}])
        )
    ]
    return math.ceil(sum(sizes) / len(sizes) / 4)


@dataclass(frozen=True)
class PerRequest:
    """Tokens one request of a kind is expected to take."""

    tokens_in: float
    tokens_out: float  # thinking included: it bills as output
    from_history: bool  # past averages of the model, not typical sizes


def per_request(
    store: Store,
    settings: Settings,
    model: str,
    kind: str,
    categories: Sequence[Category],
    *,
    descriptions: Sequence[dict[str, Any]] = (),
    history: dict[str, dict[Any, Any]] | None = None,
) -> PerRequest:
    """The model's past average for `kind` once it has 5 requests behind it, else typical sizes."""
    if history is None:
        history = {str(row["kind"]): row for row in store.usage_averages(model).to_dict("records")}
    past = history.get(kind)
    if past is not None and int(past["n"]) >= 5:
        return PerRequest(float(past["tokens_in"]), float(past["tokens_out"]) + float(past["tokens_thinking"]), True)
    image_tokens = typical_image_tokens(settings, model)
    return PerRequest(
        _typical_input(kind, categories, settings.max_categories, image_tokens, descriptions),
        _TYPICAL_OUTPUT[kind],
        False,
    )


def cost_of(
    settings: Settings, model: str, tokens_in: float, tokens_out: float, *, batch: bool = False
) -> float | None:
    """USD for these tokens at the model's price and the configured tier (Batch Mode: half the standard price);
    None when the model has no price."""
    price = settings.price_for(model, batch=batch)
    return (tokens_in * price["input"] + tokens_out * price["output"]) / 1_000_000 if price else None


def estimate(store: Store, settings: Settings, request: JobRequest, *, simulated: bool = False) -> Estimate:
    """Images x expected tokens x price, from the work list and past usage of the model (or typical sizes)."""
    _, work, _ = plan(store, request, simulated=simulated)
    model = request.model or settings.caption_model
    categories = store.categories()
    history: dict[str, dict[Any, Any]] = {
        str(row["kind"]): row for row in store.usage_averages(model).to_dict("records")
    }
    counts = work["needs"].value_counts().to_dict() if not work.empty else {}
    requests: Counter[str] = Counter()
    requests["fused"] = int(counts.get("fused", 0))
    requests["describe"] = int(counts.get("describe", 0))
    # two-pass: every described image is then categorized from its description
    requests["categorize"] = int(counts.get("categorize", 0)) + requests["describe"]
    tokens_in = tokens_out = 0.0
    from_history = []
    for kind, n in requests.items():
        if not n:
            continue
        figures = per_request(store, settings, model, kind, categories, history=history)
        if figures.from_history:
            from_history.append(kind)
        tokens_in += n * figures.tokens_in
        tokens_out += n * figures.tokens_out
    cost = cost_of(settings, model, tokens_in, tokens_out, batch=request.batch)
    basis = (
        ("averages of past " + ", ".join(from_history) + " annotations")
        if from_history
        else (f"typical sizes, {typical_image_tokens(settings, model):,} tokens an image")
    )
    without = 0
    if request.mode == "categorize":
        described = store.work_list(
            [r.id for r in _dataset_rows(store, request.datasets)],
            "fused",
            prompts.PROMPT_VERSION,
            store.category_list_version(),
            simulated=simulated,
        )
        without = int((described["needs"] == "fused").sum()) if not described.empty else 0
    return Estimate(
        images=len(work),
        requests=sum(requests.values()),
        tokens_in=round(tokens_in),
        tokens_out=round(tokens_out),
        cost_usd=cost or 0.0,
        model=model,
        basis=basis,
        without_description=without,
        price_known=cost is not None,
        service_tier="batch" if request.batch else settings.service_tier,
    )
