"""One rule for every page: text from outside reaches the browser as plain text only.

Two scans enforce it. The source scan reads every page: whatever a Markdown-rendering call (st.markdown,
st.error, a widget label, a help text, ...) is given must be a literal, a number, `plain(...)`, or one of the
few values the product writes itself (listed below with why). The render scan opens every page through
AppTest over a database where every outside text is hostile (tests/hostile.py) and reads every string the
pages send: no Markdown construct from outside arrives unescaped, and no bidirectional control arrives at all.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest

from labeling.store import Store
from tests import hostile
from tests.conftest import ROOT

PAGE_SOURCES = sorted([*(ROOT / "pages").glob("*.py"), ROOT / "streamlit_app.py"])
# Streamlit calls whose text (first argument, label=, help=, text=, captions=) is rendered as Markdown.
MARKDOWN_CALLS = {
    "markdown",
    "caption",
    "write",
    "error",
    "warning",
    "info",
    "success",
    "toast",
    "title",
    "header",
    "subheader",
    "expander",
    "tabs",
    "button",
    "download_button",
    "checkbox",
    "toggle",
    "radio",
    "selectbox",
    "multiselect",
    "text_input",
    "number_input",
    "text_area",
    "slider",
    "select_slider",
    "file_uploader",
    "popover",
    "metric",
    "form_submit_button",
    "spinner",
    "status",
    "page_link",
    "link_button",
    "date_input",
    "pills",
    "segmented_control",
    "exception",
    "chat_message",
    "dialog",
}
TEXT_KEYWORDS = ("label", "help", "body", "text", "captions")
SAFE_CALLS = {"plain", "path_help", "count"}  # path_help plains the folders it names; count: a number and our noun
# Values the product itself writes, never a name or a message from outside.
INTERNAL = {
    "job.run_id",
    "progress.run_id",
    "progress.mode",
    "progress.status",  # integers and our own vocabularies
    "page.page",
    "page.pages",  # gallery page numbers
    "store.category_list_version()",  # an integer
    "title",  # metric titles: literals in the page's own tables
    "label",  # csv_download's label: every caller passes a literal
    "' and '.join(pending)",  # our field names
    "duration(progress.elapsed_s)",  # H:MM:SS
    "len(active)",
    "len(everything) - len(active)",
}


def _constant(expr: ast.expr) -> bool:
    """A module constant (UPPER_CASE), an item or method of one: our own tables and vocabularies."""
    while isinstance(expr, ast.Subscript | ast.Attribute | ast.Call):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return isinstance(expr, ast.Name) and expr.id.isupper()


def _allowed(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Constant) or ast.unparse(expr) in INTERNAL or _constant(expr):
        return True
    if isinstance(expr, ast.Call):
        called = expr.func.attr if isinstance(expr.func, ast.Attribute) else getattr(expr.func, "id", "")
        if called == "join" and isinstance(expr.func, ast.Attribute) and _allowed(expr.func.value):
            return all(_allowed(argument) for argument in expr.args)  # "x".join of allowed parts
        return called in SAFE_CALLS
    if isinstance(expr, ast.JoinedStr):
        return all(_allowed(value) for value in expr.values)
    if isinstance(expr, ast.FormattedValue):
        return expr.format_spec is not None or _allowed(expr.value)  # a format spec means a number
    if isinstance(expr, ast.BinOp):
        return _allowed(expr.left) and _allowed(expr.right)
    if isinstance(expr, ast.IfExp):
        return _allowed(expr.body) and _allowed(expr.orelse)
    if isinstance(expr, ast.List | ast.Tuple | ast.ListComp | ast.GeneratorExp):
        parts = [expr.elt] if isinstance(expr, ast.ListComp | ast.GeneratorExp) else expr.elts
        return all(_allowed(part) for part in parts)
    return False


def _markdown_arguments(path: Path) -> Iterator[tuple[int, str, ast.expr]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MARKDOWN_CALLS:
            # st.progress is not listed: its first argument is a number; its text= is checked below.
            arguments = list(node.args[:1]) + [k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
            for argument in arguments:
                yield node.lineno, node.func.attr, argument
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "progress":
            for keyword in node.keywords:
                if keyword.arg == "text":
                    yield node.lineno, "progress", keyword.value


def test_pages_hand_markdown_only_literals_numbers_and_plain_text() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: st.{call}({ast.unparse(argument)[:80]})"
        for path in PAGE_SOURCES
        for line, call, argument in _markdown_arguments(path)
        if not _allowed(argument)
    ]
    assert not found, "outside text may reach Markdown; wrap it in common.plain():\n" + "\n".join(found)


def test_the_source_scan_catches_an_unescaped_name(tmp_path: Path) -> None:
    page = tmp_path / "page.py"
    page.write_text(
        'st.toast(f"Deleted {doomed}")\nst.toast(f"Deleted {common.plain(doomed)}")\nst.button("Go", help=message)\n',
        encoding="utf-8",
    )
    flagged = [line for line, _, argument in _markdown_arguments(page) if not _allowed(argument)]
    assert flagged == [1, 3]


# Fields whose text the browser shows as plain text (or never shows): everything else counts as Markdown.
PLAIN_FIELDS = {
    "Text.body",
    "Code.code_text",
    "Selectbox.options",
    "MultiSelect.options",
    "MultiSelect.raw_values",  # the chosen options (formatted as in options), sent when the page sets the value
    "VegaLiteChart.spec",
    "TextArea.value",
    "TextInput.value",
    # Our components' data (pages/components/*.js): they set every text from it with textContent or as an
    # attribute, never as markup (test_components_never_make_markup_from_data keeps that so)
    "BidiComponent.json",
}
# Fields never shown as text (js_content, css_content: our components' own code, pages/components)
HIDDEN_FIELDS = {"id", "raw_value", "default", "form_id", "value", "url", "data_url", "deprecated_text"}
HIDDEN_FIELDS |= {"js_content", "css_content"}


def _strings(message: Message, path: str) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        name = f"{path}.{field.name}"
        for item in [value] if isinstance(value, str | bytes | Message | int | float | bool) else list(value):
            if isinstance(item, Message):
                yield from _strings(item, name)
            elif isinstance(item, str):
                yield name, item


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _sent(at: AppTest) -> Iterator[tuple[str, str]]:
    """(proto field, text) for every string the rendered page sends, toasts included."""
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        if isinstance(proto, Message):
            yield from _strings(proto, type(proto).__name__)


def _unsafe(at: AppTest) -> list[str]:
    problems = []
    for field, text in _sent(at):
        if field.rsplit(".", 1)[-1] in HIDDEN_FIELDS:
            continue
        if hostile.BIDI in text:
            problems.append(f"{field}: a raw bidirectional control in {text[:80]!r}")
        if field not in PLAIN_FIELDS:
            live = re.sub(r"\\.", "\0", text)  # a backslash-escaped character is shown, not interpreted
            problems += [f"{field}: raw {marker!r} in {text[:80]!r}" for marker in hostile.MARKERS if marker in live]
            # GFM links a bare URL in the text as it is once escapes are resolved
            if f"://{hostile.OUTSIDE_HOST}" in re.sub(r"\\(.)", r"\1", text):
                problems.append(f"{field}: a bare URL GFM would link in {text[:80]!r}")
    return problems


@pytest.fixture
def hostile_app(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_image: Callable[..., Path]
) -> Iterator[tuple[AppTest, dict[str, int]]]:
    with Store(db_path) as store:
        ids = hostile.seed(store, tmp_path / "images", make_image)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LABELING_REVIEWER", hostile.REVIEWER)
    monkeypatch.setenv("LABELING_CAPTION_MODEL", hostile.MODEL)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    yield at, ids
    st.cache_resource.clear()


def _open(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py")
    return at.run()


# Pages whose views are stateful tabs (only the open one runs), by the tabs' key: the scan opens each view.
VIEW_KEYS = {"categories": "categories_view"}


def _each_view(at: AppTest, page: str) -> Iterator[AppTest]:
    yield at
    key = VIEW_KEYS.get(page)
    for label in [tab.label for tab in at.tabs][1:] if key else []:
        at.session_state[key] = label
        yield at.run()


@pytest.mark.parametrize("page", ["datasets", "run", "review", "categories", "compare", "audit", "export"])
def test_every_page_sends_outside_text_inert(hostile_app: tuple[AppTest, dict[str, int]], page: str) -> None:
    at, _ = hostile_app
    sent, unsafe = [], []
    for view in _each_view(_open(at, page), page):
        assert not view.exception, view.exception
        sent += [text for _, text in _sent(view)]
        unsafe += _unsafe(view)
    assert "evil" in "\n".join(sent) or page == "run", "the hostile names did not reach this page: the scan saw nothing"
    assert unsafe == []


def open_tile_at(at: AppTest, index: int) -> None:
    """Click the gallery's index-th tile (its component's "open" trigger, as the browser sends it)."""
    from tests.test_review_page import fire, tiles

    fire(at, "gallery", "open", tiles(at)[index]["id"])


def test_review_focus_sends_outside_text_inert(hostile_app: tuple[AppTest, dict[str, int]]) -> None:
    _, ids = hostile_app
    shown = []
    for index in range(len(ids)):  # the third image's attempt failed with the hostile server message
        at = _open(AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run(), "review")
        open_tile_at(at, index)
        assert not at.exception, at.exception
        assert _unsafe(at) == []
        shown += [text for _, text in _sent(at)]
    assert any("Server said" in text for text in shown), "no focus view showed the failure message"
    assert any(hostile.OUTSIDE_HOST in text for text in shown), "no focus view showed the description"


# Where a component's script could turn text into markup: an HTML sink, or an attribute that runs or links.
_HTML_SINK = re.compile(
    r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\.setAttribute\(\s*[\"'](on|href|src)"
)
_LITERAL_HTML = re.compile(r"\.innerHTML\s*=\s*(?:'[^'\\]*'\s*\+?\s*)+;")


def test_components_never_make_markup_from_data() -> None:
    """Our browser components get outside text as data (BidiComponent.json): they may write markup only as a
    literal of their own, and set every text from the data with textContent or as a plain attribute."""
    scripts = sorted((ROOT / "pages" / "components").glob("*.js"))
    assert scripts, "no component scripts found"
    found = []
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        literal_spans = [match.span() for match in _LITERAL_HTML.finditer(source)]
        for match in _HTML_SINK.finditer(source):
            if not any(start <= match.start() < end for start, end in literal_spans):
                found.append(f"{script.name}:{source.count(chr(10), 0, match.start()) + 1}: {match.group(0)}")
    assert not found, "a component may turn its data into markup:\n" + "\n".join(found)


def test_actions_report_outside_names_inert(hostile_app: tuple[AppTest, dict[str, int]], tmp_path: Path) -> None:
    at, _ = hostile_app
    _open(at, "categories")
    at.session_state[VIEW_KEYS["categories"]] = "Add · rename · merge · delete"
    at.run()
    at.text_input(key="add_name").set_value(hostile.CATEGORY + " two")
    next(b for b in at.button if b.label == "Add category").click()
    at.run()
    assert not at.exception, at.exception
    assert any("two" in text for _, text in _sent(at)), [e.value for e in (*at.error, *at.success, *at.info)]
    assert _unsafe(at) == []
    _open(at, "datasets")
    at.selectbox(key="delete_name").set_value(hostile.DATASET)
    at.run()
    at.checkbox(key="delete_sure").check()
    at.run()
    at.button(key="delete_button").click()
    at.run()
    assert not at.exception, at.exception
    assert [toast.value for toast in at.toast] and _unsafe(at) == []


def test_a_progress_card_shows_a_hostile_model_and_error_inert() -> None:
    def card() -> None:
        from labeling.jobs import Progress as LiveProgress
        from pages import common
        from tests import hostile

        progress = LiveProgress(
            run_id=7,
            mode="fused",
            status="failed",
            message=hostile.ERROR,
            simulated=False,
            datasets=(hostile.DATASET,),
            model=hostile.MODEL,
            total=3,
            done=1,
            failed=2,
            requests=3,
            retries=0,
            rate_limited=0,
            tokens_in=0,
            tokens_out=0,
            tokens_thinking=0,
            cost_usd=0.0,
            elapsed_s=1.0,
            images_per_s=1.0,
            eta_s=None,
            failures_by_kind={"invalid_argument": 2},
            notices=(hostile.TEXT,),
            price_known=False,
        )

        class Job:
            run_id = 7

        common.progress_card(Job(), progress)  # type: ignore[arg-type]

    at = AppTest.from_function(card, default_timeout=30).run()
    assert not at.exception, at.exception
    assert any("Server said" in text for _, text in _sent(at))
    assert _unsafe(at) == []


def test_the_render_scan_catches_raw_markdown_and_bidi() -> None:
    def page() -> None:
        import streamlit as st

        from tests import hostile

        st.markdown(hostile.TEXT)
        st.text(hostile.BIDI)

    at = AppTest.from_function(page, default_timeout=30).run()
    problems = _unsafe(at)
    assert sum("Markdown.body: raw" in problem for problem in problems) == len(hostile.MARKERS)
    assert any(problem.startswith("Text.body: a raw bidirectional") for problem in problems)
