"""The core stays UI-free and the pages stay thin."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT


def _imports(path) -> set[str]:  # type: ignore[no-untyped-def]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_streamlit_in_source() -> None:
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "labeling").rglob("*.py")
                 if "streamlit" in _imports(path)]
    assert offenders == []


def test_importing_every_core_module_loads_no_streamlit() -> None:
    modules = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts)
                     for path in (ROOT / "labeling").rglob("*.py")
                     if path.name != "__main__.py")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
            "print('streamlit' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_pages_hold_no_sql_or_http() -> None:
    for path in (ROOT / "pages").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        imports = _imports(path)
        assert not imports & {"duckdb", "boto3", "botocore", "requests", "httpx", "google", "PIL"}, path.name
        for keyword in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM"):
            assert keyword not in text, (path.name, keyword)


def test_no_page_renders_html() -> None:
    for path in [ROOT / "streamlit_app.py", *(ROOT / "pages").glob("*.py")]:
        assert "unsafe_allow_html=True" not in path.read_text(encoding="utf-8"), path.name
