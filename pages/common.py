"""What every page shares: the process-wide settings and store, and safe ways to show errors and user text."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import streamlit as st

from labeling.errors import LabelingError
from labeling.settings import Settings, load_settings
from labeling.store import Store

if TYPE_CHECKING:
    from labeling.jobs import JobManager

T = TypeVar("T")


def _hand_over_to_the_frame() -> None:
    """Route a deep link that Streamlit's legacy `pages/` discovery ran on its own through streamlit_app.py.

    A `pages/` folder beside the entrypoint makes Streamlit run /datasets (say) as a bare script until the frame
    has called `st.navigation` once in this process; the frame then owns routing, sidebar and settings.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_hand_over_to_the_frame()


@st.cache_resource(show_spinner=False)
def _settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def _store(db_path: str) -> Store:
    return Store(db_path)


def settings() -> Settings:
    """Settings resolved once per process (config.yaml, environment)."""
    return _settings()


def store() -> Store:
    """The process-wide store: one DuckDB connection shared by every session, a cursor per thread."""
    return _store(settings().db_path)


REVIEWER_KEY = "reviewer"  # the sidebar's reviewer-name input (streamlit_app.py)


def reviewer() -> str:
    """The name recorded with human edits: the sidebar's input, else `reviewer` from settings ("" if neither)."""
    name = st.session_state.get(REVIEWER_KEY)
    if name is None:
        name = settings().reviewer
    return str(name).strip()


@st.cache_resource(show_spinner=False)
def _job_manager(db_path: str) -> JobManager:
    from labeling.jobs import JobManager  # the SDK loads only when a page needs jobs

    return JobManager(store(), settings())


def job_manager() -> JobManager:
    """The process-wide job runner: its jobs outlive pages, sessions and browser tabs (poll them, never own)."""
    return _job_manager(settings().db_path)


def run_or_error(action: Callable[[], T]) -> T | None:
    """Run a core call; a LabelingError becomes an `st.error` with its message, never a traceback."""
    try:
        return action()
    except LabelingError as exc:
        st.error(str(exc))
        return None


def csv_download(label: str, frame: pd.DataFrame, file_name: str, key: str) -> None:
    """A download button for a frame as UTF-8 CSV."""
    st.download_button(label, frame.to_csv(index=False).encode("utf-8"), file_name=file_name,
                       mime="text/csv", key=key)


def plain(text: Any) -> str:
    """User or model text made inert for markdown (file names, descriptions): no links, images or HTML."""
    escaped = str(text)
    for char in "\\`*_{}[]()#+-.!|<>~$":
        escaped = escaped.replace(char, "\\" + char)
    return escaped
