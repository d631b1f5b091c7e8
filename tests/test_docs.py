"""The README and config.yaml.example stay in step with the settings the code reads."""

from __future__ import annotations

import re

import yaml

from labeling.settings import SPECS, load_settings
from tests.conftest import ROOT


def _readme_settings_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = line
    return rows


def test_readme_table_lists_every_setting_with_its_env_and_default() -> None:
    rows = _readme_settings_rows()
    assert set(rows) == {spec.yaml_key for spec in SPECS}
    for spec in SPECS:
        row = rows[spec.yaml_key]
        for variable in spec.env:
            assert f"`{variable}`" in row, (spec.name, variable)
        if not isinstance(spec.default, dict | tuple) and spec.default != "":
            assert f"`{spec.default}`" in row, (spec.name, spec.default)


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:1500]
    assert "python3 streamlit_app.py" in head
    assert "python3 -m tests" in head
    assert "python3 -m tests" in (ROOT / ".ci" / "run").read_text()


def test_config_example_loads_and_uses_known_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    example = ROOT / "config.yaml.example"
    settings = load_settings(example, env={})
    assert settings.caption_model == "gemini-2.5-flash-lite"
    known = {spec.yaml_path for spec in SPECS}
    data = yaml.safe_load(example.read_text())

    def paths(node: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:  # type: ignore[type-arg]
        found: set[tuple[str, ...]] = set()
        for key, value in node.items():
            path = (*prefix, key)
            if path in known or not isinstance(value, dict):
                found.add(path)
            else:
                found |= paths(value, path)
        return found

    assert paths(data) <= known
    assert re.search(r"gemini_api_key:", example.read_text())


def test_readme_names_every_cli_command_and_every_page() -> None:
    import argparse

    from labeling.cli import build_parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert [name for name in commands if f"`{name}`" not in readme] == []
    pages = re.findall(r'url_path="([a-z_]+)"', (ROOT / "streamlit_app.py").read_text(encoding="utf-8"))
    assert pages and [page for page in pages if f"(`/{page}`)" not in readme] == []
