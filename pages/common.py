"""What every page shares: the process-wide settings and store, and safe ways to show errors and user text."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import streamlit as st

from labeling import app_host, logs
from labeling.annotators.providers import provider_for
from labeling.app_host import AppHost
from labeling.datasets import read_csv_file
from labeling.errors import LabelingError
from labeling.path_policy import PathPolicy, path_policy
from labeling.plain_text import BIDI_CONTROLS
from labeling.plain_text import visible as visible  # plain-text widgets (st.text, options) use it
from labeling.settings import Settings, load_settings
from labeling.spreadsheet import frame_csv
from labeling.store import Store
from labeling.wording import count

if TYPE_CHECKING:
    from labeling.jobs import Job, JobManager, Progress
    from labeling.presence import CommandStatus
    from labeling.thumbnails import Pictures

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
    loaded = load_settings()
    # Once per process: decoder warnings and tracebacks to logs/labeling.log, not the terminal running the app.
    logs.configure(loaded.db_path)
    return loaded


def _host() -> AppHost:
    return app_host.host(settings())


def settings() -> Settings:
    """Settings resolved once per process (config.yaml, environment)."""
    return _settings()


def store() -> Store:
    """The process-wide store: one DuckDB connection shared by every session, a cursor per thread."""
    return _host().store()


REVIEWER_KEY = "reviewer"  # the sidebar's reviewer-name input (streamlit_app.py)


_MEMORY_KEY = "reviewer_memory"
_NAME_ASKED_KEY = "reviewer_from_dialog"  # a name typed where a save asked for it, applied before the input exists


def _adopt_stored_name() -> None:
    stored = (st.session_state.get(_MEMORY_KEY) or {}).get("stored")
    if stored and not str(st.session_state.get(REVIEWER_KEY) or "").strip():
        st.session_state[REVIEWER_KEY] = str(stored)[:200]


def remember_reviewer() -> None:
    """Keep the reviewer name in this browser: a reload or a new session starts with it (before the input)."""
    asked = st.session_state.pop(_NAME_ASKED_KEY, None)
    if asked:
        st.session_state[REVIEWER_KEY] = asked
    if REVIEWER_KEY not in st.session_state and settings().reviewer:
        st.session_state[REVIEWER_KEY] = settings().reviewer
    from pages import widgets

    widgets.reviewer_memory(key=_MEMORY_KEY, name=reviewer(), on_stored=_adopt_stored_name)


def set_reviewer(name: str) -> None:
    """Use `name` from now on (asked for by a save); the sidebar input shows it from the next run."""
    st.session_state[_NAME_ASKED_KEY] = name.strip()


def reviewer() -> str:
    """The name recorded with human edits: the sidebar's input, else `reviewer` from settings ("" if neither)."""
    name = st.session_state.get(_NAME_ASKED_KEY) or st.session_state.get(REVIEWER_KEY)
    if name is None:
        name = settings().reviewer
    return str(name).strip()


@st.cache_resource(show_spinner=False)
def _pictures(db_path: str, cache_dir: str) -> Pictures:
    from labeling import picture_routes
    from labeling.thumbnails import Pictures

    made = Pictures(store(), settings())
    picture_routes.serve(made)  # the /pictures routes of serve.py read through it
    return made


def pictures() -> Pictures:
    """The process-wide picture reader (thumbnails, previews, originals), keeping each dataset's source."""
    chosen = settings()
    return _pictures(chosen.db_path, chosen.cache_dir)


def job_manager() -> JobManager:
    """The process-wide job runner: its jobs outlive pages, sessions and browser tabs (poll them, never own)."""
    return _host().job_manager()


def holder() -> CommandStatus | None:
    """The `labeling` command holding the database while the app waits for it, as it describes itself."""
    return _host().holder()


def picture_url(kind: str, image_id: int) -> str:
    """Where the browser fetches (and caches) a picture: "thumb", "preview" or "original" (labeling.picture_routes)."""
    from labeling import picture_routes

    pictures()  # registers the reader the routes use
    return picture_routes.url(kind, image_id, str(st.get_option("server.baseUrlPath") or ""))


def paths() -> PathPolicy:
    """Which server paths the pages may use: any on loopback, only `allowed_paths` once the app is shared."""
    return path_policy(st.get_option("server.address"), settings().allowed_paths, settings().db_path)


def path_help(text: str) -> str:
    """A path field's help, saying where paths may lie when the app is shared."""
    policy = paths()
    if not policy.shared:
        return text
    if not policy.allows_paths:
        return text + " Off: the app is shared on the network and allowed_paths is empty."
    return text + " The app is shared: paths must lie inside " + plain(", ".join(map(str, policy.roots or ()))) + "."


def server_path(path: str, what: str) -> Path | None:
    """`path` if a page may use it for `what`; else an `st.error` saying why, and None."""
    return run_or_error(lambda: paths().check(path, what))


def has_key(chosen: Settings | None = None) -> bool:
    """Whether the configured provider has what it needs to answer (its API key): the provider says."""
    chosen = chosen or settings()
    return provider_for(chosen).has_key(chosen)


def run_or_error(action: Callable[[], T]) -> T | None:
    """Run a core call; a LabelingError becomes an `st.error` with its message, never a traceback."""
    try:
        return action()
    except LabelingError as exc:
        st.error(plain(str(exc)))  # messages quote servers and models: never markdown
        return None


def csv_download(label: str, frame: pd.DataFrame, file_name: str, key: str) -> None:
    """A download button for a frame as UTF-8 CSV."""
    st.download_button(label, frame_csv(frame), file_name=file_name, mime="text/csv", key=key)


_AUTOLINK = re.compile(r"(?i)://|www\.|[\w.+-]@")


def plain(text: Any) -> str:
    """User or model text made inert for markdown (file names, descriptions): no links, images or HTML.

    Every Markdown character is escaped (`:` too, or `:material/x:` and `:red[...]` become an icon or styled
    text); bare URLs and e-mail addresses get an invisible word joiner, because GFM links them after resolving
    escapes. Bidirectional controls (a right-to-left override reverses the rest of the line) are shown as their
    code points, e.g. `<U+202E>`, instead of acting.
    """
    # GFM links bare URLs and e-mail addresses after escapes are resolved: a word joiner breaks the pattern.
    escaped = _AUTOLINK.sub(lambda found: found.group()[:-1] + "\u2060" + found.group()[-1], str(text))
    for char in "\\`*_{}[]()#+-.!|<>~$:/":
        escaped = escaped.replace(char, "\\" + char)
    return BIDI_CONTROLS.sub(lambda found: f"\\<U+{ord(found.group()):04X}\\>", escaped)


def duration(seconds: float | None) -> str:
    """Seconds as H:MM:SS, or "-" when unknown."""
    if seconds is None:
        return "-"
    return str(dt.timedelta(seconds=round(seconds)))


def progress_card(job: Job, progress: Progress) -> None:
    """One run's live progress with Pause / Resume / Cancel; shared by the Run and Categories pages."""
    from labeling.planning import price_unknown

    with st.container(border=True):
        st.markdown(
            f"**Run #{progress.run_id}** · {progress.mode} · {plain(', '.join(progress.datasets))}"
            f" · {plain(progress.model)} · **{progress.status}**"
            f"{' · simulated' if progress.simulated else ''}"
        )
        if progress.simulated:
            st.caption("Simulated: answers come from the built-in fake Gemini server, not from a real model.")
        handled = progress.done + progress.failed
        st.progress(
            min(handled / progress.total, 1.0) if progress.total else 1.0,
            text=f"{handled:,} of {count(progress.total, 'image')}",
        )
        columns = st.columns(6)
        columns[0].metric("Done", f"{progress.done:,}")
        columns[1].metric("Failed", f"{progress.failed:,}")
        columns[2].metric("Images/s", f"{progress.images_per_s:.1f}")
        columns[3].metric("ETA", duration(progress.eta_s) if not progress.finished else "-")
        columns[4].metric("Tokens", f"{progress.tokens_in + progress.tokens_out + progress.tokens_thinking:,}")
        columns[5].metric("Cost", f"${progress.cost_usd:,.4f}" if progress.price_known else "unknown")
        if not progress.price_known:
            st.caption(plain(price_unknown(progress.model).capitalize() + " to see what this run costs."))
        if progress.requests:
            st.caption(
                f"{progress.requests:,} requests, {progress.retries:,} retries, {progress.rate_limited:,} "
                f"answered 429 (quota); elapsed {duration(progress.elapsed_s)}."
            )
        for hold in progress.holds:
            st.warning(plain(hold.line()), icon=":material/hourglass_top:")
        for notice in progress.notices:
            st.info(plain(notice))
        if progress.status == "failed":
            st.error(plain(progress.message))
        elif progress.message and (progress.finished or progress.status == "paused"):
            st.info(plain(progress.message))
        shards = store().batch_shards(progress.run_id)  # none for a run on the worker threads
        if shards:
            st.caption("Batch jobs (each shard is one uploaded JSONL file and one Gemini batch job)")
            st.dataframe({"shard": [visible(shard.line()) for shard in shards]}, hide_index=True, width="stretch")
        if progress.failures_by_kind:
            st.caption(
                "Failures: "
                + ", ".join(f"{plain(kind)} {count:,}" for kind, count in sorted(progress.failures_by_kind.items()))
            )
        buttons = st.columns(6)
        # Callbacks run before the next render, so the card already shows the new status.
        if progress.status == "running":
            buttons[0].button("Pause", key=f"pause_{job.run_id}", on_click=job.pause)
        if progress.status == "paused":
            buttons[0].button("Resume", key=f"resume_{job.run_id}", on_click=job.resume)
        if progress.status in ("running", "paused"):
            buttons[1].button("Cancel", key=f"cancel_{job.run_id}", on_click=job.cancel)


def simulated_notice(datasets: list[str]) -> None:
    """Say plainly when what a page shows comes from the fake Gemini server rather than a real model."""
    simulated = store().simulated_datasets(datasets)
    if simulated:
        st.warning(
            f"Simulated: {plain(', '.join(simulated))} hold labels made by the built-in fake Gemini server "
            "(example project), not by a real model.",
            icon=":material/science:",
        )


def chosen_csv(upload: Any, path: str) -> tuple[bytes | None, str | None] | None:
    """The CSV a form was given: an upload wins over a path; (None, None) for neither; None after an error."""
    if upload is not None:
        return upload.getvalue(), upload.name
    if not path.strip():
        return None, None
    checked = server_path(path.strip(), "a CSV list")
    if checked is None:
        return None
    data = run_or_error(lambda: read_csv_file(checked))
    return None if data is None else (data, path.strip())


def default_datasets(labels: dict[str, str]) -> list[str]:
    """REAL and GEN datasets first (by label, else by name), else the first two."""
    names = list(labels)
    upper = [label.upper() for label in labels.values()]
    by_label = [
        next(n for n, got in zip(names, upper, strict=True) if got == wanted)
        for wanted in ("REAL", "GEN")
        if wanted in upper
    ]
    by_name: list[str] = [n for n in ("REAL", "GEN") if n in names]
    return by_label if len(by_label) == 2 else (by_name if len(by_name) == 2 else names[:2])


def table_height(rows: int, most: int = 20) -> int:
    """A `st.dataframe` height that shows every row, up to `most` (then it scrolls)."""
    return 38 + 35 * min(max(rows, 1), most)
