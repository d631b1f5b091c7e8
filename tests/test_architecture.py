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
    offenders = [
        str(path.relative_to(ROOT)) for path in (ROOT / "labeling").rglob("*.py") if "streamlit" in _imports(path)
    ]
    assert offenders == []


def test_importing_every_core_module_loads_no_streamlit() -> None:
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "labeling").rglob("*.py")
        if path.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
        "print('streamlit' in sys.modules)"
    )
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


# What each layer may import from the product (README "Layout and extension points"). Pages -> core ->
# store / sources / annotators; nothing points back. `labeling.<module>` entries name single modules.
LIGHT = {
    "labeling.errors",
    "labeling.redact",
    "labeling.vocabulary",
    "labeling.categories",
    "labeling.records",
    "labeling.plain_text",
}
LAYERS: dict[str, set[str]] = {
    "labeling/store": LIGHT | {"labeling.store", "labeling.spreadsheet"},
    "labeling/annotators": LIGHT | {"labeling.annotators", "labeling.settings", "labeling.images"},
    "labeling/sources.py": LIGHT | {"labeling.matching", "labeling.names", "labeling.settings"},
    "labeling/s3.py": LIGHT | {"labeling.sources", "labeling.files", "labeling.names", "labeling.settings"},
    "labeling/fake_gemini": LIGHT | {"labeling.fake_gemini", "labeling.annotators.models"},
}


def _product_imports(path) -> set[str]:  # type: ignore[no-untyped-def]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labeling"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("labeling")}
    return found


def _allowed(module: str, allowed: set[str]) -> bool:
    return any(module == entry or module.startswith(entry + ".") for entry in allowed)


def test_each_layer_imports_only_what_its_row_allows() -> None:
    broken = []
    for layer, allowed in LAYERS.items():
        target = ROOT / layer
        for path in [target] if target.suffix == ".py" else sorted(target.rglob("*.py")):
            broken += [
                f"{path.relative_to(ROOT)} imports {module}"
                for module in sorted(_product_imports(path))
                if not _allowed(module, allowed)
            ]
    assert broken == []


def test_the_core_never_imports_a_page() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "labeling").rglob("*.py")
        if any(module.startswith("pages") for module in _imports(path))
    ]
    assert offenders == []


def _loaded_after(code: str) -> set[str]:
    heavy = ["pandas", "duckdb", "google.genai", "altair", "boto3", "PIL", "numpy", "scipy", "streamlit"]
    done = subprocess.run(
        [sys.executable, "-c", code + f"\nimport sys\nprint([m for m in {heavy!r} if m in sys.modules])"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


def test_labeling_help_loads_no_heavy_library() -> None:
    code = (
        "import contextlib, io\nfrom labeling.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit): main(['--help'])"
    )
    assert _loaded_after(code) == set()


def test_listing_datasets_loads_the_database_but_no_dataframes_sdk_or_charts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        f"import contextlib, io\nfrom labeling.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['--db', {str(tmp_path / 'x.duckdb')!r}, "
        "'datasets', '--json'])"
    )
    assert _loaded_after(code) == {"duckdb"}


def test_the_annotator_protocol_loads_no_sdk() -> None:
    assert _loaded_after("import labeling.annotators, labeling.annotators.prompts") == set()


def test_the_start_page_loads_neither_the_s3_sdk_nor_the_example_project() -> None:
    """boto3 and the example project's fake Gemini server load when their forms are used: a first visit that
    imported them would wait about 0.6 s longer (bench/app_start_bench.py)."""
    code = (
        "import sys\nfrom streamlit.testing.v1 import AppTest\n"
        "app = AppTest.from_file('streamlit_app.py', default_timeout=60)\napp.run()\n"
        "assert [title.value for title in app.title] == ['Datasets'], app.exception\n"
        "assert 'Import your first dataset' in [header.value for header in app.subheader]\n"
        "print([m for m in ('boto3', 'google.genai', 'labeling.demo', 'labeling.fake_gemini') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert ast.literal_eval(done.stdout.strip().splitlines()[-1]) == []
