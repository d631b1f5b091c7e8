"""The Gemini annotator on google-genai: structured output, error classification, token accounting.

One `genai.Client` is shared by every worker thread (its connection pool is sized for them). The client
never retries on its own: the job runner does, honouring the server's retry delay, which the SDK ignores.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
from google.genai import errors, types
from PIL import Image

from labeling.annotators import prompts
from labeling.annotators.base import Annotation, ResponseFailure, RetryableError, Usage
from labeling.annotators.gemini_client import generation_config, make_client
from labeling.annotators.gemini_errors import AmbiguousRefusal, RequestShape, SchemaTooComplex, classify
from labeling.annotators.gemini_requests import RequestTemplate, send
from labeling.annotators.models import family_for, unknown_model_warning
from labeling.categories import UNKNOWN, Category
from labeling.errors import AnnotatorError
from labeling.settings import Settings

log = logging.getLogger(__name__)

# finishReason values that mean a filter withheld the answer.
_BLOCKED_REASONS = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}
_MEDIA_RESOLUTIONS = {
    "low": types.MediaResolution.MEDIA_RESOLUTION_LOW,
    "medium": types.MediaResolution.MEDIA_RESOLUTION_MEDIUM,
    "high": types.MediaResolution.MEDIA_RESOLUTION_HIGH,
}
_SUGGEST_OUTPUT_TOKENS = 8192  # fifty names with definitions, plus thinking on the families that must think
PLAIN_CATEGORIES_NOTICE = (
    "Gemini refused the category list as an enum in the response schema (too many states): "
    "this run asks for plain strings instead and checks them against the list itself."
)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Transport failures surface as raw httpx2 (or httpx) exceptions, not SDK errors."""
    found: list[type[BaseException]] = [httpx2.TransportError]
    try:
        import httpx

        found.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - httpx is an optional backend
        pass
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


@functools.cache
def probe_image() -> bytes:
    """A small gradient JPEG: the image of a connection check (costs one tiny request)."""
    image = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _usage(response: types.GenerateContentResponse) -> Usage:
    meta = response.usage_metadata
    if meta is None:
        return Usage()
    return Usage(
        prompt=meta.prompt_token_count or 0,
        candidates=meta.candidates_token_count or 0,
        thoughts=meta.thoughts_token_count or 0,
        cached=meta.cached_content_token_count or 0,
    )


def normalize_categories(values: Any, categories: Sequence[Category], max_categories: int) -> list[str]:
    """The answer's categories in the list's spelling; `unknown` only alone. Raises on anything off-list."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("wrong_shape", "the categories are not a list of names")
    allowed = {name.lower(): name for name in prompts.category_names(categories)}
    chosen: list[str] = []
    off_list = [v for v in values if v.strip().lower() not in allowed]
    if off_list:
        raise ValueError("off_list", f"categories outside the list: {', '.join(map(repr, off_list))}")
    for value in values:
        name = allowed[value.strip().lower()]
        if name not in chosen:
            chosen.append(name)
    known = [name for name in chosen if name != UNKNOWN]
    if not chosen:
        raise ValueError("wrong_shape", "no category was given")
    return known[:max_categories] if known else [UNKNOWN]


def _check_description(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("wrong_shape", "the answer is not a JSON object")
    missing = [name for name in prompts.DESCRIPTION_FIELDS if name not in value]
    if missing or not isinstance(value.get("summary"), str) or not value["summary"].strip():
        raise ValueError("wrong_shape", f"the description lacks {', '.join(missing) or 'a summary'}")
    return {name: value[name] for name in prompts.DESCRIPTION_FIELDS}


class GeminiAnnotator:
    """Gemini through google-genai; one instance (one Client) is shared by all worker threads of a run."""

    def __init__(
        self, settings: Settings, *, model: str | None = None, max_workers: int | None = None, simulated: bool = False
    ) -> None:
        self.model = (model or settings.caption_model).strip()
        if not self.model:
            raise AnnotatorError("No model is set: set caption_model in config.yaml or pass --model.")
        self.prompt_version = prompts.PROMPT_VERSION
        self.simulated = simulated
        self.settings = settings
        self.price = settings.price_for(self.model)
        self.price_known = self.price is not None
        self.family, _ = family_for(self.model)
        self._lock = threading.Lock()
        self._notices: list[str] = [w for w in [unknown_model_warning(self.model)] if w]
        self._proven: set[str] = set()  # request kinds that got an answer in this run
        self._plain_categories = False  # the API refused the category enum: send plain strings
        self._extra_requests, self._extra_usage = 0, Usage()
        # Kept referenced for the annotator's lifetime: a dropped Client closes its pool mid-call.
        self._client = make_client(settings, max(max_workers or settings.num_workers, 1))

    def close(self) -> None:
        self._client.close()

    def notices(self) -> list[str]:
        with self._lock:
            return list(self._notices)

    # -- the three calls ---------------------------------------------------------------------------

    def describe(self, image: bytes, mime_type: str) -> Annotation:
        value, usage = self._generate(lambda enum: prompts.describe_prompt(), image, mime_type)
        return self._checked("describe", value, usage, (), 0)

    def categorize(
        self, description: dict[str, Any], categories: Sequence[Category], max_categories: int
    ) -> Annotation:
        value, usage = self._generate(
            lambda enum: prompts.categorize_prompt(description, categories, max_categories, enum), None, None
        )
        return self._checked("categorize", value, usage, categories, max_categories, description)

    def describe_and_categorize(
        self, image: bytes, mime_type: str, categories: Sequence[Category], max_categories: int
    ) -> Annotation:
        value, usage = self._generate(
            lambda enum: prompts.fused_prompt(categories, max_categories, enum), image, mime_type
        )
        return self._checked("fused", value, usage, categories, max_categories)

    def annotation_from_response(
        self,
        kind: str,
        response: types.GenerateContentResponse | dict[str, Any],
        categories: Sequence[Category],
        max_categories: int,
        description: dict[str, Any] | None = None,
        *,
        price: dict[str, float] | None = None,
    ) -> Annotation:
        """An answer that arrived some other way (a batch result line: the REST JSON of a GenerateContentResponse)
        read exactly as a synchronous answer: the Annotation, or ResponseFailure / RetryableError with its kind.
        `price` replaces the annotator's own (batch answers cost half)."""
        price = self.price if price is None else price
        if isinstance(response, dict):
            try:
                # As the SDK reads its own answers: fields this SDK version does not know are dropped, not fatal.
                response = types.GenerateContentResponse._from_response(response=dict(response), kwargs={})
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise ResponseFailure(f"The answer is not a GenerateContentResponse ({exc}).", "wrong_shape") from None
        usage = _usage(response)
        value = parse_answer(response, usage, price)
        return self._checked(kind, value, usage, categories, max_categories, description, price)

    def _checked(
        self,
        kind: str,
        value: Any,
        usage: Usage,
        categories: Sequence[Category],
        max_categories: int,
        description: dict[str, Any] | None = None,
        price: dict[str, float] | None = None,
    ) -> Annotation:
        """The parsed JSON of one answer checked for its kind (describe, fused, categorize) into an Annotation."""
        price = self.price if price is None else price
        names: list[str] | None = None
        if kind in ("describe", "fused"):
            description = _parsed(lambda: _check_description(value), usage, price)
        if kind in ("fused", "categorize"):
            names = _parsed(
                lambda: normalize_categories(
                    value.get("categories") if isinstance(value, dict) else None, categories, max_categories
                ),
                usage,
                price,
            )
        return Annotation(kind, self.model, self.prompt_version, description, names, usage, usage.cost(price))

    def ask(self, prompt: prompts.Prompt) -> tuple[Any, Usage]:
        """A text-only request answered as JSON in `prompt.schema` (category suggestions): the parsed answer and
        its usage; raises the three error kinds like the calls above."""
        return self._generate(lambda enum: prompt, None, None)

    def probe(self, categories: Sequence[Category], max_categories: int) -> Annotation:
        """One small real request with the real fused schema: checks key, model, version and schema."""
        return self.describe_and_categorize(probe_image(), "image/jpeg", categories, max_categories)

    # -- plumbing ----------------------------------------------------------------------------------

    def _output_limit(self, kind: str) -> int:
        return _SUGGEST_OUTPUT_TOKENS if kind == "suggest" else self.family.output_limit(kind)

    def _media(self, kind: str) -> types.MediaResolution | None:
        return _MEDIA_RESOLUTIONS.get(self.settings.media_resolution) if kind in ("describe", "fused") else None

    @functools.lru_cache(maxsize=32)  # noqa: B019 - one annotator a run: its few configs are converted once
    def _template(self, kind: str, system: str, schema_json: str) -> RequestTemplate:
        return RequestTemplate.build(self._client, self.model, self._config(kind, system, schema_json))

    def _config(self, kind: str, system: str, schema_json: str) -> types.GenerateContentConfig:
        extra: dict[str, Any] = {}
        if kind == "suggest":  # a creative task: a little warmer than captioning where the family lets us choose
            extra = {"temperature": 0.4 if self.family.temperature is not None else None}
        return generation_config(
            self.settings,
            self.model,
            system_instruction=system,
            response_schema=types.Schema.model_validate(json.loads(schema_json)),
            max_output_tokens=self._output_limit(kind),
            media_resolution=self._media(kind),
            **extra,
        )

    @property
    def category_enum(self) -> bool:
        """Whether categories go out as an enum (False once the API refused the enum as too complex)."""
        return not self._plain_categories

    def rest_request(
        self, prompt: prompts.Prompt, image: bytes | None = None, mime_type: str | None = None
    ) -> dict[str, Any]:
        """The REST `GenerateContentRequest` of the request `_send` makes through the SDK (a batch file's line
        carries it): `systemInstruction`, `generationConfig` with `responseSchema` (never `responseJsonSchema`,
        which batch answers ignored) and the same family settings. No service tier: a batch is its own tier."""
        parts: list[dict[str, Any]] = []
        if image is not None:
            data = base64.b64encode(image).decode("ascii")
            parts.append({"inlineData": {"mimeType": mime_type or "image/jpeg", "data": data}})
        if prompt.text:
            parts.append({"text": prompt.text})
        config: dict[str, Any] = {
            "responseMimeType": "application/json",
            "responseSchema": prompt.schema,
            "candidateCount": 1,
            "maxOutputTokens": self._output_limit(prompt.kind),
        }
        if self.family.temperature is not None:
            config["temperature"] = self.family.temperature
        if self.family.thinking:
            config["thinkingConfig"] = {_camel(name): value for name, value in self.family.thinking.items()}
        media = self._media(prompt.kind)
        if media is not None:
            config["mediaResolution"] = media.value
        return {
            "contents": [{"role": "user", "parts": parts}],
            "systemInstruction": {"parts": [{"text": prompt.system}]},
            "generationConfig": config,
        }

    @property
    def client(self) -> Any:
        """The shared google-genai Client (batch mode creates and polls jobs through it)."""
        return self._client

    def _generate(
        self,
        make_prompt: Callable[[bool], prompts.Prompt],
        image: bytes | None,
        mime_type: str | None,
        *,
        probing: bool = False,
    ) -> tuple[Any, Usage]:
        """Send one request; return its parsed JSON and usage, or raise one of the three error kinds."""
        prompt = make_prompt(not self._plain_categories)
        try:
            response = self._send(prompt, image, mime_type)
        except errors.APIError as exc:
            shape = RequestShape(
                self.model,
                self.settings.gemini_api_version,
                image is not None,
                prompts.has_category_enum(prompt.schema),
                prompt.kind in self._proven,
            )
            outcome = classify(exc, shape)
            if isinstance(outcome, SchemaTooComplex):
                if not shape.has_enum:
                    raise AnnotatorError(
                        f"Gemini refused the response schema even without an enum ({outcome}): "
                        "shorten the category names or definitions, or ask for fewer "
                        "suggestions."
                    ) from exc
                self._fall_back_to_plain_categories()
                self._add_extra(requests=1)  # the same request goes again, plain
                return self._generate(make_prompt, image, mime_type, probing=probing)
            if isinstance(outcome, AmbiguousRefusal) and not probing:
                return self._find_the_fault(outcome, exc, shape, make_prompt, image, mime_type)
            raise outcome from exc
        except httpx2.TimeoutException as exc:
            raise RetryableError(f"The request timed out ({type(exc).__name__}).", "timeout") from exc
        except _TRANSPORT_ERRORS as exc:
            kind = "timeout" if "Timeout" in type(exc).__name__ else "transport"
            raise RetryableError(f"The connection to Gemini failed ({type(exc).__name__}: {exc}).", kind) from exc
        usage = _usage(response)
        with self._lock:
            self._proven.add(prompt.kind)
        return parse_answer(response, usage, self.price), usage

    def _find_the_fault(
        self,
        refusal: AmbiguousRefusal,
        cause: errors.APIError,
        shape: RequestShape,
        make_prompt: Callable[[bool], prompts.Prompt],
        image: bytes | None,
        mime_type: str | None,
    ) -> tuple[Any, Usage]:
        """A bare "invalid argument" on a request of a shape not yet answered: the image, the enum or the request?

        A small known-good image with the same request tells an image's fault; failing that, plain strings in
        place of the category enum tell the schema's; failing both, the request is wrong and the run stops.
        """
        if shape.has_image:
            self._add_extra(requests=1)
            try:
                _, usage = self._generate(make_prompt, probe_image(), "image/jpeg", probing=True)
            except AmbiguousRefusal:
                pass
            except (ResponseFailure, RetryableError) as answered:  # an answer of any kind: the request is fine
                self._add_extra(usage=answered.usage)
                raise self._image_refused(cause) from None
            else:
                self._add_extra(usage=usage)
                raise self._image_refused(cause)
        if shape.has_enum:
            self._fall_back_to_plain_categories()
            self._add_extra(requests=1)
            return self._generate(make_prompt, image, mime_type)
        raise refusal from cause

    def _image_refused(self, cause: errors.APIError) -> ResponseFailure:
        return ResponseFailure(f"Gemini refused the request for this image ({cause.message}).", "invalid_argument")

    def _add_extra(self, requests: int = 0, usage: Usage | None = None) -> None:
        """Requests this annotator sent on its own (a probe, a re-send): the runner counts them and their cost."""
        with self._lock:
            self._extra_requests += requests
            self._extra_usage += usage or Usage()

    def drain_extra(self) -> tuple[int, Usage, float]:
        """Requests sent on the annotator's own since the last call, their usage and cost."""
        with self._lock:
            requests, usage = self._extra_requests, self._extra_usage
            self._extra_requests, self._extra_usage = 0, Usage()
        return requests, usage, usage.cost(self.price)

    def _fall_back_to_plain_categories(self) -> None:
        with self._lock:
            if not self._plain_categories:
                self._plain_categories = True
                self._notices.append(PLAIN_CATEGORIES_NOTICE)
                log.warning(PLAIN_CATEGORIES_NOTICE)

    def _send(
        self, prompt: prompts.Prompt, image: bytes | None, mime_type: str | None
    ) -> types.GenerateContentResponse:
        template = self._template(prompt.kind, prompt.system, json.dumps(prompt.schema))
        return send(self._client, template, template.request(image, mime_type or "image/jpeg", prompt.text))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _failure(message: str, kind: str, usage: Usage, price: dict[str, float] | None) -> ResponseFailure:
    return ResponseFailure(message, kind, usage, usage.cost(price))


def _parsed(check: Callable[[], Any], usage: Usage, price: dict[str, float] | None) -> Any:
    try:
        return check()
    except ValueError as exc:
        kind, detail = exc.args if len(exc.args) == 2 else ("wrong_shape", str(exc))
        raise _failure(f"The answer does not fit the schema: {detail}.", kind, usage, price) from None


def parse_answer(response: types.GenerateContentResponse, usage: Usage, price: dict[str, float] | None) -> Any:
    """The JSON value of one answer, or the ResponseFailure / RetryableError (empty) it is: the one reading of
    an answer, for synchronous calls and batch result lines alike."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = getattr(feedback.block_reason, "value", str(feedback.block_reason))
        raise _failure(f"Gemini blocked the request ({reason}).", "prompt_blocked", usage, price)
    if not response.candidates:
        raise _empty("Gemini returned no candidate.", usage, price)
    candidate = response.candidates[0]
    finish = getattr(candidate.finish_reason, "value", None) or "STOP"
    if finish in _BLOCKED_REASONS:
        raise _failure(f"Gemini withheld the answer (finishReason {finish}).", "safety", usage, price)
    text = (
        "".join(part.text for part in (candidate.content.parts or []) if part.text and not part.thought)
        if candidate.content
        else ""
    )
    if finish == "MAX_TOKENS":
        spent = (
            "thinking used the whole output limit"
            if not text and usage.thoughts
            else "the output token limit was reached"
        )
        raise _failure(
            f"The answer was cut off: {spent} (MAX_TOKENS, {usage.thoughts:,} thinking and "
            f"{usage.candidates:,} answer tokens).",
            "max_tokens",
            usage,
            price,
        )
    if finish not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        raise _failure(f"Gemini stopped early (finishReason {finish}).", finish.lower(), usage, price)
    if not text.strip():
        raise _empty("Gemini returned an answer without text.", usage, price)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _failure(
            f"The answer is not valid JSON ({exc.msg} at character {exc.pos}).", "invalid_json", usage, price
        ) from None


def _empty(message: str, usage: Usage, price: dict[str, float] | None) -> RetryableError:
    """An empty answer is intermittent: the runner retries it (twice), then records it as `empty`."""
    return RetryableError(message, "empty", usage=usage, cost_usd=usage.cost(price))
