"""Settings: the seed's config keys, precedence, and the API key that never leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeling.errors import ConfigError
from labeling.settings import SPECS, load_settings

SEED_CONFIG = """\
gemini_api_key: "seed-secret-key"
caption_model: "gemini-2.5-flash-lite"
processing:
  image_max_size: 512
  max_retries: 5
  retry_backoff_seconds: 1.5
  per_request_sleep_seconds: 0.25
"""


def test_seed_config_keys_keep_working(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(SEED_CONFIG)
    settings = load_settings(config, env={})
    assert settings.gemini_api_key == "seed-secret-key"
    assert settings.caption_model == "gemini-2.5-flash-lite"
    assert (settings.image_max_size, settings.max_retries) == (512, 5)
    assert (settings.retry_backoff_seconds, settings.per_request_sleep_seconds) == (1.5, 0.25)


def test_precedence_default_file_env_flag(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database: from-file.duckdb\nprocessing:\n  num_workers: 3\n")
    assert load_settings(None, env={}).db_path == "data/labeling.duckdb"
    assert load_settings(config, env={}).db_path == "from-file.duckdb"
    assert load_settings(config, env={"LABELING_DB": "env.duckdb"}).db_path == "env.duckdb"
    flagged = load_settings(
        config, overrides={"db_path": "flag.duckdb", "num_workers": None}, env={"LABELING_DB": "env.duckdb"}
    )
    assert flagged.db_path == "flag.duckdb"
    assert flagged.num_workers == 3  # a flag left at None does not override


def test_config_from_environment_variable_and_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "other.yaml").write_text("caption_model: gemini-3.1-flash-lite\n")
    assert load_settings(env={"LABELING_CONFIG": str(tmp_path / "other.yaml")}).caption_model == "gemini-3.1-flash-lite"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("caption_model: from-cwd\n")
    assert load_settings(env={}).caption_model == "from-cwd"


def test_api_key_sources_follow_the_sdk_order() -> None:
    assert load_settings(env={"GEMINI_API_KEY": "g"}).gemini_api_key == "g"
    assert load_settings(env={"GOOGLE_API_KEY": "o", "GEMINI_API_KEY": "g"}).gemini_api_key == "o"


def test_api_key_never_appears_in_repr_or_public_dict(tmp_path: Path) -> None:
    settings = load_settings(env={"GEMINI_API_KEY": "very-secret-123"})
    assert settings.has_api_key
    assert "very-secret-123" not in repr(settings)
    assert "very-secret-123" not in str(settings.public_dict())
    assert settings.public_dict()["api_key_set"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("processing:\n  image_max_size: zero\n", "image_max_size"),
        ("processing:\n  num_workers: 0\n", "num_workers"),
        ("[unclosed", "not valid YAML"),
        ("- a list\n", "mapping"),
        ("prices:\n  my-model: {input: 1}\n", "output"),
    ],
)
def test_invalid_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_prices_merge_over_defaults(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("prices:\n  my-model: {input: 1.0, output: 2.0}\n")
    settings = load_settings(config, env={})
    # Without a cached rate, cache hits bill at the full input rate (never cheaper than the truth).
    assert settings.price_for("my-model") == {"input": 1.0, "output": 2.0, "cached": 1.0}
    assert settings.price_for("gemini-2.5-flash-lite") == {"input": 0.10, "output": 0.40, "cached": 0.01}


def test_a_model_without_a_price_has_none_and_current_models_have_theirs() -> None:
    settings = load_settings(env={})
    assert settings.price_for("gemini-9-experimental") is None  # never a silent fallback to another model's price
    assert settings.price_for("gemini-3.5-flash-lite") == {"input": 0.30, "output": 2.50, "cached": 0.03}


def test_flex_halves_every_rate_and_priority_costs_more() -> None:
    standard = load_settings(env={}).price_for("gemini-3.5-flash-lite")
    flex = load_settings(env={"LABELING_SERVICE_TIER": "flex"}).price_for("gemini-3.5-flash-lite")
    priority = load_settings(env={"LABELING_SERVICE_TIER": "PRIORITY"}).price_for("gemini-3.5-flash-lite")
    assert standard and flex and priority
    assert {k: round(v * 2, 6) for k, v in flex.items()} == standard
    assert priority["output"] > standard["output"]


def test_api_version_defaults_to_v1beta_and_honours_the_sdks_variable() -> None:
    assert load_settings(env={}).gemini_api_version == "v1beta"
    assert load_settings(env={"GOOGLE_GENAI_API_VERSION": "beta"}).gemini_api_version == "v1beta"
    assert load_settings(env={"GOOGLE_GENAI_API_VERSION": "v1"}).gemini_api_version == "v1"
    with pytest.raises(ConfigError, match="gemini_api_version"):
        load_settings(env={"LABELING_GEMINI_API_VERSION": "v2"})


def test_flex_gets_the_long_timeout() -> None:
    assert load_settings(env={}).effective_timeout_seconds == 60
    assert load_settings(env={"LABELING_SERVICE_TIER": "flex"}).effective_timeout_seconds == 900


def test_every_spec_is_a_settings_field_with_the_same_default() -> None:
    defaults = load_settings(env={})
    for spec in SPECS:
        assert getattr(defaults, spec.name) == spec.default, spec.name
