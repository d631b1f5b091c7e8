"""The app's own browser components (Streamlit components v2; code in pages/components/*.js|css).

Each is trusted code of ours: every text it shows arrives as data and is set with textContent, never as markup.
- gallery: Review's tiles (one height, letterboxed), a click opens, a tick selects;
- viewer: the focus view's image with zoom to 100% and pan, prefetching the next images;
- review_keys: `?` lists the shortcuts, `c` jumps to the category finder, unsaved edits guard links and reloads;
- reviewer_memory: keeps the reviewer name in the browser's localStorage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

_HERE = Path(__file__).parent / "components"


def _asset(name: str) -> str | None:
    path = _HERE / name
    return path.read_text(encoding="utf-8") if path.exists() else None


def _component(name: str, *, isolate_styles: bool = True) -> Any:
    return st.components.v2.component(
        f"labeling_{name}", js=_asset(f"{name}.js"), css=_asset(f"{name}.css"), isolate_styles=isolate_styles
    )


_gallery = _component("gallery")
_viewer = _component("viewer")
_keys = _component("keys")
_memory = _component("memory")


def gallery(
    tiles: Sequence[dict[str, Any]],
    *,
    key: str,
    on_open: Callable[[], None],
    on_toggle: Callable[[], None],
    height: int = 180,
) -> None:
    """Tiles: {id, src, name, lines, selected, current}; `st.session_state[key]["open"|"toggle"]` names the id."""
    _gallery(
        key=key,
        data={"tiles": list(tiles), "height": height},
        on_open_change=on_open,
        on_toggle_change=on_toggle,
    )


def viewer(
    *,
    key: str,
    image_key: str,
    preview: str,
    original: str,
    name: str,
    size: tuple[int, int] | None,
    prefetch: Sequence[str] = (),
    height: int = 560,
) -> None:
    """The zoomable image; `size` is the original's (width, height) when known (else read from the file)."""
    width, tall = size or (0, 0)
    _viewer(
        key=key,
        data={
            "key": image_key,
            "preview": preview,
            "original": original,
            "name": name,
            "width": width,
            "height_px": tall,
            "prefetch": list(prefetch),
            "height": height,
        },
    )


def review_keys(
    *, key: str, shown: str, pending: bool, shortcuts: Sequence[tuple[str, str]], finder: str, editor: str
) -> None:
    """`finder`/`editor`: the st-key-… classes of the category finder and the description form."""
    _keys(
        key=key,
        data={
            "token": shown,
            "pending": pending,
            "shortcuts": [list(item) for item in shortcuts],
            "finder": finder,
            "editor": editor,
        },
        height=0,
    )


def reviewer_memory(*, key: str, name: str, on_stored: Callable[[], None]) -> None:
    """Writes `name` to the browser; when empty, the name stored there arrives as st.session_state[key]["stored"]."""
    _memory(key=key, data={"name": name}, on_stored_change=on_stored, height=0)
