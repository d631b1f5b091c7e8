"""Settings: one frozen object built once from defaults, `config.yaml`, the environment and CLI flags.

Precedence, lowest to highest: built-in default < config file < environment variable < CLI flag.
The config file is `--config FILE`, else `$LABELING_CONFIG`, else `config.yaml` in the working directory if present.
The seed's keys (gemini_api_key, caption_model, processing.*) keep working unchanged.
The API key lives in memory only: it is excluded from `repr`, `public_dict()` and everything that is stored or shown.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labeling.errors import ConfigError
from labeling.redact import redact_values

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    # USD per 1M tokens at the standard tier (list prices, 2026-10); thinking tokens bill as output; `cached` is
    # the implicit-cache rate (10% of input for 2.5 and later). Overridable and extendable under `prices:`.
    "gemini-2.5-flash-lite": {"input": 0.10, "output": 0.40, "cached": 0.01},
    "gemini-2.5-flash": {"input": 0.30, "output": 2.50, "cached": 0.03},  # retires 2026-12-01
    "gemini-3.1-flash-lite": {"input": 0.25, "output": 1.50, "cached": 0.025},
    "gemini-3.5-flash-lite": {"input": 0.30, "output": 2.50, "cached": 0.03},
    "gemini-3.5-flash": {"input": 1.50, "output": 9.00, "cached": 0.15},
    "gemini-3.8-flash": {"input": 0.75, "output": 3.75, "cached": 0.075},  # launch price until 2026-12-31
}
# What each service tier costs against the standard price: Flex is half; Priority 75-100% more (the upper end,
# so an estimate is never below the bill).
TIER_PRICE_FACTORS: dict[str, float] = {"standard": 1.0, "flex": 0.5, "priority": 2.0}
BATCH_PRICE_FACTOR = 0.5  # Batch Mode bills half the standard price, whatever the synchronous tier
API_VERSIONS = ("v1beta", "v1", "v1alpha")
MEDIA_RESOLUTIONS = ("", "low", "medium", "high")


@dataclass(frozen=True)
class SettingSpec:
    """How one setting is read: its config-file path, environment variable, default and meaning."""

    name: str
    yaml_path: tuple[str, ...]
    env: tuple[str, ...]
    default: Any
    parse: Callable[[Any], Any]
    doc: str
    secret: bool = False

    @property
    def yaml_key(self) -> str:
        return ".".join(self.yaml_path)


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be 1 or more")
    return number


def _non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _non_negative_float(value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _positive_float(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be more than 0")
    return number


MAX_NEAR_DUPLICATE_DISTANCE = 12  # the band search's cost grows as (d + 1)^2 joins of ever narrower keys


def _hash_distance(value: Any) -> int:
    number = int(value)
    if not 0 <= number <= MAX_NEAR_DUPLICATE_DISTANCE:
        raise ValueError(f"must be 0..{MAX_NEAR_DUPLICATE_DISTANCE} bits")
    return number


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _choice(options: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        text = (aliases or {}).get(text, text)
        if text not in options:
            raise ValueError("must be one of " + ", ".join(repr(o) for o in options))
        return text

    return parse


def _paths(value: Any) -> tuple[str, ...]:
    """A list of folders: a YAML list, or one string with them separated by the OS path separator (`:`)."""
    if value is None:
        return ()
    items = value.split(os.pathsep) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a list of folders")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _prices(value: Any) -> dict[str, dict[str, float]]:
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping of model name to {input: USD per 1M tokens, output: ...}")
    merged = {model: dict(price) for model, price in DEFAULT_PRICES.items()}
    for model, price in value.items():
        if not isinstance(price, Mapping) or not {"input", "output"} <= set(price):
            raise ValueError(f"prices.{model} needs both `input` and `output` (USD per 1M tokens)")
        entry = {"input": float(price["input"]), "output": float(price["output"])}
        # Without a cached rate, cache hits are billed at the full input rate (never cheaper than the truth).
        entry["cached"] = float(price.get("cached", entry["input"]))
        merged[str(model)] = entry
    return merged


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "gemini_api_key",
        ("gemini_api_key",),
        ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
        "",
        _text,
        "Gemini API key. Kept in memory only: never stored, logged, exported or shown.",
        secret=True,
    ),
    SettingSpec(
        "provider",
        ("provider",),
        ("LABELING_PROVIDER",),
        "gemini",
        _choice(("gemini",)),
        "Which model service describes and categorizes (the annotator provider).",
    ),
    SettingSpec(
        "caption_model",
        ("caption_model",),
        ("LABELING_MODEL",),
        "gemini-2.5-flash-lite",
        _text,
        "Gemini model used for describing and categorizing.",
    ),
    SettingSpec(
        "gemini_base_url",
        ("gemini_base_url",),
        ("GOOGLE_GEMINI_BASE_URL",),
        "",
        _text,
        "Base URL of the Gemini API (empty: Google's). Point it at the fake server for offline runs.",
    ),
    SettingSpec(
        "gemini_api_version",
        ("gemini_api_version",),
        ("LABELING_GEMINI_API_VERSION", "GOOGLE_GENAI_API_VERSION"),
        "v1beta",
        _choice(API_VERSIONS, {"beta": "v1beta"}),
        "Gemini API version. v1beta is the only one with system instructions, structured output and "
        "thinking settings; v1 refuses them.",
    ),
    SettingSpec(
        "service_tier",
        ("service_tier",),
        ("LABELING_SERVICE_TIER",),
        "standard",
        _choice(tuple(TIER_PRICE_FACTORS)),
        "standard, flex (half price, best effort, slower) or priority (faster, costs more).",
    ),
    SettingSpec(
        "media_resolution",
        ("media_resolution",),
        ("LABELING_MEDIA_RESOLUTION",),
        "",
        _choice(MEDIA_RESOLUTIONS),
        "Tokens per image: low, medium or high (empty: the model's default, high on Gemini 3).",
    ),
    SettingSpec(
        "request_timeout_seconds",
        ("processing", "request_timeout_seconds"),
        ("LABELING_REQUEST_TIMEOUT",),
        60.0,
        _non_negative_float,
        "Timeout of one model request; a timed-out request is retried.",
    ),
    SettingSpec(
        "flex_request_timeout_seconds",
        ("processing", "flex_request_timeout_seconds"),
        ("LABELING_FLEX_TIMEOUT",),
        900.0,
        _non_negative_float,
        "Timeout of one request on the flex tier, whose answers may take minutes.",
    ),
    SettingSpec(
        "max_hold_minutes",
        ("processing", "max_hold_minutes"),
        ("LABELING_MAX_HOLD_MINUTES",),
        30.0,
        _non_negative_float,
        "How long a run waits out constant quota or overload answers before it stops (0: no limit).",
    ),
    SettingSpec(
        "decode_budget_megapixels",
        ("processing", "decode_budget_megapixels"),
        ("LABELING_DECODE_BUDGET_MP",),
        128.0,
        _non_negative_float,
        "Megapixels all workers may decode at once; bounds memory with huge images (about 8 MB a "
        "megapixel; 0: no limit).",
    ),
    SettingSpec(
        "image_max_size",
        ("processing", "image_max_size"),
        ("LABELING_IMAGE_MAX_SIZE",),
        768,
        _positive_int,
        "Longest side, in pixels, of the image sent to the model.",
    ),
    SettingSpec(
        "max_retries",
        ("processing", "max_retries"),
        ("LABELING_MAX_RETRIES",),
        3,
        _non_negative_int,
        "Retries of one request after quota, overload, 5xx or timeout errors.",
    ),
    SettingSpec(
        "retry_backoff_seconds",
        ("processing", "retry_backoff_seconds"),
        ("LABELING_RETRY_BACKOFF",),
        2.0,
        _non_negative_float,
        "First retry delay; doubles each retry (with jitter) unless the server names a delay.",
    ),
    SettingSpec(
        "max_backoff_seconds",
        ("processing", "max_backoff_seconds"),
        ("LABELING_MAX_BACKOFF",),
        60.0,
        _non_negative_float,
        "Longest wait between retries when the server names no delay.",
    ),
    SettingSpec(
        "per_request_sleep_seconds",
        ("processing", "per_request_sleep_seconds"),
        ("LABELING_PER_REQUEST_SLEEP",),
        0.0,
        _non_negative_float,
        "Pause of each worker after each request (the seed's throttle; prefer requests_per_minute).",
    ),
    SettingSpec(
        "num_workers",
        ("processing", "num_workers"),
        ("LABELING_NUM_WORKERS",),
        8,
        _positive_int,
        "Worker threads sending requests.",
    ),
    SettingSpec(
        "requests_per_minute",
        ("processing", "requests_per_minute"),
        ("LABELING_RPM",),
        0,
        _non_negative_int,
        "Shared request-rate limit across workers, per minute (0: no limit).",
    ),
    SettingSpec(
        "max_categories",
        ("processing", "max_categories"),
        ("LABELING_MAX_CATEGORIES",),
        2,
        _positive_int,
        "Most categories one image may carry.",
    ),
    SettingSpec(
        "batch_shard_mb",
        ("batch", "shard_mb"),
        ("LABELING_BATCH_SHARD_MB",),
        500,
        _positive_float,
        "Batch Mode: largest JSONL file (one batch job) in MB; the API takes up to 2,000.",
    ),
    SettingSpec(
        "batch_max_jobs",
        ("batch", "max_jobs"),
        ("LABELING_BATCH_MAX_JOBS",),
        20,
        _positive_int,
        "Batch Mode: batch jobs in flight at once (the API allows about 100 per project).",
    ),
    SettingSpec(
        "batch_max_enqueued_tokens",
        ("batch", "max_enqueued_tokens"),
        ("LABELING_BATCH_MAX_ENQUEUED_TOKENS",),
        0,
        _non_negative_int,
        "Batch Mode: input tokens enqueued at once per run (your tier's per-model batch limit in AI Studio); "
        "0 = no budget, a refused job waits for a running one to end.",
    ),
    SettingSpec(
        "batch_poll_seconds",
        ("batch", "poll_seconds"),
        ("LABELING_BATCH_POLL_SECONDS",),
        30.0,
        _non_negative_float,
        "Batch Mode: seconds between two looks at each job in flight.",
    ),
    SettingSpec(
        "batch_stuck_hours",
        ("batch", "stuck_hours"),
        ("LABELING_BATCH_STUCK_HOURS",),
        24.0,
        _non_negative_float,
        "Batch Mode: a job pending or running longer than this is reported as stuck (it keeps being polled).",
    ),
    SettingSpec(
        "max_name_length",
        ("max_name_length",),
        ("LABELING_MAX_NAME_LENGTH",),
        1024,
        _positive_int,
        "Longest image name a list may hold; longer ones are rejected at import with the reason.",
    ),
    SettingSpec(
        "near_duplicate_distance",
        ("near_duplicate_distance",),
        ("LABELING_NEAR_DUPLICATE_DISTANCE",),
        6,
        _hash_distance,
        "Near duplicates: images whose pHash and dHash both differ in at most this many of 64 bits (re-encodes "
        "and resizes differ in 0-2, light colour edits up to 5, a 3% crop about 10, unrelated photos 30+).",
    ),
    SettingSpec(
        "db_path",
        ("database",),
        ("LABELING_DB",),
        "data/labeling.duckdb",
        _text,
        "The DuckDB file that holds every dataset, annotation and human label.",
    ),
    SettingSpec(
        "cache_dir",
        ("cache_dir",),
        ("LABELING_CACHE_DIR",),
        "data/cache",
        _text,
        "Folder for thumbnails and images fetched from S3.",
    ),
    SettingSpec(
        "allowed_paths",
        ("allowed_paths",),
        ("LABELING_ALLOWED_PATHS",),
        (),
        _paths,
        "Folders the app's pages may read and write when it is shared on a network (bound to anything "
        "but loopback); empty: no server paths, uploads and downloads only. On 127.0.0.1 any path works.",
    ),
    SettingSpec(
        "reviewer",
        ("reviewer",),
        ("LABELING_REVIEWER",),
        "",
        _text,
        "Name recorded with human edits (the app's sidebar can change it).",
    ),
    SettingSpec(
        "aws_profile",
        ("s3", "profile"),
        ("AWS_PROFILE",),
        "",
        _text,
        "AWS profile for S3 datasets (credentials come only from boto3's standard chain).",
    ),
    SettingSpec(
        "aws_region", ("s3", "region"), ("AWS_REGION", "AWS_DEFAULT_REGION"), "", _text, "AWS region of the bucket."
    ),
    SettingSpec(
        "s3_endpoint_url",
        ("s3", "endpoint_url"),
        ("AWS_ENDPOINT_URL",),
        "",
        _text,
        "Endpoint of an S3-compatible store (empty: AWS).",
    ),
    SettingSpec(
        "s3_bucket",
        ("s3", "bucket"),
        ("LABELING_S3_BUCKET",),
        "",
        _text,
        "Default bucket for `download` when --bucket is not given.",
    ),
    SettingSpec(
        "prices",
        ("prices",),
        (),
        DEFAULT_PRICES,
        _prices,
        "USD per 1M input/output/cached tokens per model at the standard tier, merged over the built-in table.",
    ),
)

SPEC_BY_NAME: dict[str, SettingSpec] = {spec.name: spec for spec in SPECS}


@dataclass(frozen=True)
class Settings:
    """Every setting the app and CLI use, resolved once. Build it with `load_settings`."""

    gemini_api_key: str = field(default="", repr=False)
    provider: str = "gemini"
    caption_model: str = "gemini-2.5-flash-lite"
    gemini_base_url: str = ""
    gemini_api_version: str = "v1beta"
    service_tier: str = "standard"
    media_resolution: str = ""
    request_timeout_seconds: float = 60.0
    flex_request_timeout_seconds: float = 900.0
    max_hold_minutes: float = 30.0
    decode_budget_megapixels: float = 128.0
    image_max_size: int = 768
    max_retries: int = 3
    retry_backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0
    per_request_sleep_seconds: float = 0.0
    num_workers: int = 8
    requests_per_minute: int = 0
    max_categories: int = 2
    batch_shard_mb: float = 500
    batch_max_jobs: int = 20
    batch_max_enqueued_tokens: int = 0
    batch_poll_seconds: float = 30.0
    batch_stuck_hours: float = 24.0
    max_name_length: int = 1024
    near_duplicate_distance: int = 6
    db_path: str = "data/labeling.duckdb"
    cache_dir: str = "data/cache"
    allowed_paths: tuple[str, ...] = ()
    reviewer: str = ""
    aws_profile: str = ""
    aws_region: str = ""
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    prices: dict[str, dict[str, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    config_file: str = ""

    @property
    def has_api_key(self) -> bool:
        return bool(self.gemini_api_key)

    def public_dict(self) -> dict[str, Any]:
        """The settings safe to store with a run or show on a page: secrets left out."""
        return redact_values({spec.name: getattr(self, spec.name) for spec in SPECS if not spec.secret}) | {
            "api_key_set": self.has_api_key
        }

    def price_for(self, model: str, *, batch: bool = False) -> dict[str, float] | None:
        """USD per 1M tokens for `model` at the configured service tier (or in Batch Mode, half the standard
        price); None when the model has no price."""
        base = self.prices.get(model.strip().removeprefix("models/"))
        if base is None:
            return None
        factor = BATCH_PRICE_FACTOR if batch else TIER_PRICE_FACTORS.get(self.service_tier, 1.0)
        return {kind: rate * factor for kind, rate in {"cached": base["input"], **base}.items()}

    @property
    def effective_timeout_seconds(self) -> float:
        """One request's timeout: flex answers may take many minutes."""
        if self.service_tier == "flex":
            return max(self.request_timeout_seconds, self.flex_request_timeout_seconds)
        return self.request_timeout_seconds

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _dig(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _read_config(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist: create it from config.yaml.example or drop --config."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Config file {path} is not valid YAML ({exc.__class__.__name__}): fix it "
            "or compare it with config.yaml.example."
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of settings, like config.yaml.example.")
    return loaded


def _parse(spec: SettingSpec, value: Any, origin: str) -> Any:
    try:
        return spec.parse(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"Setting {spec.name} from {origin} is invalid ({value!r}: {exc}): fix it or "
            f"remove it to use the default {spec.default!r}."
        ) from None


def _resolve_config_path(
    config_file: str | os.PathLike[str] | None, env: Mapping[str, str], cwd: str | None
) -> Path | None:
    base = Path(cwd) if cwd else Path()
    if config_file:
        return base / config_file
    if env.get("LABELING_CONFIG"):
        return base / env["LABELING_CONFIG"]
    default = base / "config.yaml"
    return default if default.is_file() else None


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Settings:
    """Resolve every setting: defaults < config file < environment < `overrides` (CLI flags; None is ignored).

    `cwd` is the folder a relative config path means (a command run through the app: its caller's)."""
    env = os.environ if env is None else env
    path = _resolve_config_path(config_file, env, cwd)
    config = _read_config(path) if path else {}
    values: dict[str, Any] = {}
    for spec in SPECS:
        value: Any = spec.default
        from_file = _dig(config, spec.yaml_path)
        if spec.name == "db_path" and isinstance(from_file, Mapping):
            from_file = from_file.get("path")  # `database: {path: ...}` reads as well as `database: ...`
        if from_file is not None:
            value = _parse(spec, from_file, f"{path}:{spec.yaml_key}")
        for variable in spec.env:
            if env.get(variable):
                value = _parse(spec, env[variable], f"${variable}")
                break
        if overrides and overrides.get(spec.name) is not None:
            value = _parse(spec, overrides[spec.name], f"--{spec.name.replace('_', '-')}")
        values[spec.name] = value
    return Settings(**values, config_file=str(path) if path else "")
