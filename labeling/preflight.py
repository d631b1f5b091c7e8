"""The connection check: one small real request with the real schema, reported step by step.

`labeling check` and the Run page's "Test connection" both call `check_connection`. It costs one tiny request
(a 64x64 image and the fused schema of the category list in force) and tells whether the key is accepted, the
model exists on the configured API version, the schema is accepted, which service tier was asked for, and what
the answer's tokens were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labeling.annotators.base import ResponseFailure, RetryableError, Usage
from labeling.annotators.gemini_errors import KeyRejected, ModelNotFound
from labeling.categories import Category
from labeling.errors import AnnotatorError
from labeling.redact import redact
from labeling.settings import Settings


@dataclass(frozen=True)
class Step:
    label: str
    ok: bool | None  # None: not reached
    detail: str = ""

    def line(self) -> str:
        mark = {True: "ok", False: "FAILED", None: "not checked"}[self.ok]
        return f"{self.label}: {mark}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class CheckReport:
    """What the check found; `ok` when a run with these settings can start."""

    model: str
    api_version: str
    service_tier: str
    endpoint: str
    steps: list[Step] = field(default_factory=list)
    usage: Usage | None = None
    cost_usd: float | None = None
    advice: str = ""

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def lines(self) -> list[str]:
        head = f"Gemini {self.model} on {self.api_version} at {self.endpoint}, {self.service_tier} tier"
        lines = [head, *(step.line() for step in self.steps)]
        if self.usage is not None:
            cost = f"cost ${self.cost_usd:.6f}" if self.cost_usd is not None else f"price unknown for {self.model}"
            lines.append(
                f"Answer tokens: {self.usage.prompt:,} input ({self.usage.cached:,} cached), "
                f"{self.usage.candidates:,} output, {self.usage.thoughts:,} thinking; {cost}"
            )
        if self.advice:
            lines.append(self.advice)
        return lines


def check_connection(
    settings: Settings, categories: Sequence[Category], max_categories: int, model: str | None = None
) -> CheckReport:
    """Send one small fused request with the real schema and report each step."""
    from labeling.annotators.gemini import GeminiAnnotator  # the SDK loads only when a check runs

    name = (model or settings.caption_model).strip()
    report = CheckReport(
        name,
        settings.gemini_api_version,
        settings.service_tier,
        redact(settings.gemini_base_url) or "https://generativelanguage.googleapis.com",
    )
    key, found = "Key accepted", f"Model found on {settings.gemini_api_version}"
    schema, tier = "Schema accepted", Step("Service tier", True, f"{settings.service_tier} requested")
    try:
        annotator = GeminiAnnotator(settings, model=name, max_workers=1)
    except AnnotatorError as exc:
        return _with(report, [Step(key, False), Step(found, None), Step(schema, None)], str(exc))
    try:
        annotation = annotator.probe(categories, max_categories)
    except KeyRejected as exc:
        return _with(report, [Step(key, False), Step(found, None), Step(schema, None)], str(exc))
    except ModelNotFound as exc:
        return _with(report, [Step(key, True), Step(found, False), Step(schema, None)], str(exc))
    except AnnotatorError as exc:
        return _with(report, [Step(key, True), Step(found, True), Step(schema, False)], str(exc))
    except RetryableError as exc:
        if exc.kind in ("transport", "timeout"):
            return _with(
                report,
                [Step(key, None, "Gemini could not be reached"), Step(found, None), Step(schema, None)],
                f"{exc} Check the network and gemini_base_url, then test again.",
            )
        return _with(
            report,
            [Step(key, None, "Gemini asked to wait"), Step(found, None), Step(schema, None)],
            f"Gemini answered {exc.kind} ({exc}): the settings could not be checked; try again later.",
        )
    except ResponseFailure as exc:
        steps = [Step(key, True), Step(found, True), Step(schema, True), tier, Step("Usable answer", False, exc.kind)]
        return _with(
            report,
            steps,
            f"The request was accepted but the answer was not usable ({exc}).",
            exc.usage,
            exc.cost_usd if annotator.price_known else None,
        )
    finally:
        annotator.close()
    notices = annotator.notices()
    detail = "fell back to plain strings" if any("plain strings" in n for n in notices) else ""
    steps = [Step(key, True), Step(found, True), Step(schema, True, detail), tier]
    return _with(
        report, steps, " ".join(notices), annotation.usage, annotation.cost_usd if annotator.price_known else None
    )


def _with(
    report: CheckReport, steps: list[Step], advice: str, usage: Usage | None = None, cost: float | None = None
) -> CheckReport:
    return CheckReport(
        report.model, report.api_version, report.service_tier, report.endpoint, steps, usage, cost, advice
    )
