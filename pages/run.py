"""Run: caption and categorize datasets with Gemini; live progress, pause / resume / cancel, failures, history.

Jobs live in the process-wide JobManager (common.job_manager), not in the session: they keep running when the
user switches pages, reloads or closes the tab. What a run changes is one live fragment that polls them once a
second: progress cards, History (read from the store), Failures. When a run starts, pauses or ends, the whole page
redraws (the estimate, the resume list); the estimate follows a running run every few seconds on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pandas as pd
import streamlit as st

from labeling import demo
from labeling.planning import Estimate, JobRequest, estimate, plan
from labeling.preflight import check_connection
from labeling.settings import Settings
from labeling.taxonomy import ensure_categories
from labeling.vocabulary import MODES
from labeling.wording import count
from pages import common, example_project

MODE_LABELS = {
    "fused": "Describe + categorize (1 request per image)",
    "two-pass": "Two-pass: describe, then categorize the text (2 requests, as the seed)",
    "categorize": "Categorize stored descriptions only (no image sent)",
}
SERVICE_TIERS = ("standard", "flex", "priority")
BATCH = "batch"  # not a tier: Gemini Batch Mode, the other executor (labeling.batch_executor)
TIER_LABELS = {
    "standard": "Standard",
    "flex": "Flex (50% cost, answers may take minutes)",
    "priority": "Priority (faster, costs more)",
    BATCH: "Batch (50% cost, up to 24 h)",
}
RESUMABLE = ("interrupted", "cancelled", "paused")
T = TypeVar("T")
State = tuple[tuple[int, str, int, int], ...]  # (id, status, done, failed) of the newest runs, from the store
HISTORY_LIMIT = 50
# What a person looks for first, left to right; the rest follows when scrolled.
HISTORY_COLUMNS = (
    *("id", "kind", "status", "simulated", "datasets", "done", "failed", "total", "cost_usd"),
    *("tokens_in", "tokens_out", "tokens_thinking", "requests", "model", "started_at", "finished_at", "message"),
)
TOKEN_COLUMNS = {
    "tokens_in": st.column_config.NumberColumn("Input tokens", format="localized"),
    "tokens_out": st.column_config.NumberColumn("Output tokens", format="localized"),
    "tokens_thinking": st.column_config.NumberColumn("Thinking tokens", format="localized"),
}
ESTIMATE_EVERY_S = 5  # while a run goes, the estimate (a scan of the work list) is redone at most this often
MEMO = "run_page_memo"  # reads kept between fragment reruns; a full run of the page starts it afresh
FULL_RUN = "run_page_full_run"  # set by a full run of the page, taken by the first live fragment run after it
DRAWN_WITH = "run_page_drawn_with"  # the runs' statuses the rest of the page was last drawn with

st.title("Run")
store = common.store()
settings = common.settings()
manager = common.job_manager()


def _show_estimate(expected: Estimate, mode: str) -> None:
    columns = st.columns(4)
    columns[0].metric("Images", f"{expected.images:,}")
    columns[1].metric("Requests", f"{expected.requests:,}")
    columns[2].metric("Expected tokens", f"{expected.tokens_in + expected.tokens_out:,}")
    columns[3].metric("Expected cost", f"${expected.cost_usd:,.4f}" if expected.price_known else "unknown")
    st.caption(common.plain(f"Estimate: {expected.line()}"))
    if mode == "categorize" and expected.without_description:
        st.info(
            f"{count(expected.without_description, 'image')} "
            f"{'has' if expected.without_description == 1 else 'have'} no description yet: describe them first."
        )


def _start_form(names: list[str]) -> None:
    with st.container(border=True):
        st.subheader("Start a run")
        example_only = [n for n in names if n not in demo.EXAMPLE_DATASETS]
        datasets = st.multiselect(
            "Datasets", names, default=example_only[:1] or names[:1], format_func=common.visible, key="run_datasets"
        )
        mode = st.radio("Mode", MODES, format_func=MODE_LABELS.__getitem__, key="run_mode")
        left, middle, right = st.columns(3)
        model = left.text_input("Model", value=settings.caption_model, key="run_model").strip()
        workers = int(
            middle.number_input("Workers", min_value=1, max_value=128, value=settings.num_workers, key="run_workers")
        )
        rpm = int(
            right.number_input(
                "Requests per minute (0 = no limit)",
                min_value=0,
                max_value=1_000_000,
                value=settings.requests_per_minute,
                step=60,
                key="run_rpm",
            )
        )
        choice = st.radio(
            "Service tier",
            [*SERVICE_TIERS, BATCH],
            index=SERVICE_TIERS.index(settings.service_tier),
            format_func=TIER_LABELS.__getitem__,
            key="run_tier",
            horizontal=True,
            help="Batch: JSONL shards uploaded as Gemini batch jobs, answered within 24 h (usually much sooner); "
            "the run resumes by itself after a restart. Workers and requests per minute do not apply.",
        )
        batch = choice == BATCH
        tier = settings.service_tier if batch else choice
        retry_failed = st.checkbox("Only images whose last attempt failed (retry failed)", key="run_retry_failed")
        run_settings = settings.replace(service_tier=tier, caption_model=model or settings.caption_model)
        _test_connection(run_settings)
        if not datasets:
            st.info("Choose one or more datasets.")
            return
        if batch and mode == "two-pass":
            st.info("Batch Mode asks once per image: choose Describe + categorize, or Categorize.")
            return
        request = JobRequest(
            tuple(datasets),
            mode=mode,
            model=model or None,
            num_workers=workers,
            requests_per_minute=rpm,
            retry_failed=retry_failed,
            executor=BATCH if batch else "sync",
        )
        _estimate_and_start(request, run_settings)


@st.fragment(run_every=1)
def _estimate_and_start(request: JobRequest, run_settings: Settings) -> None:
    """The estimate follows what runs do: redone when one starts, pauses or ends, and every few seconds while
    one goes (the form's widgets sit outside: changing them reruns the whole page, and this with it)."""
    statuses = _statuses(_states())
    active = any(status in ("running", "paused") for _, status in statuses)
    token = (request, run_settings.service_tier, statuses, int(time.monotonic() // ESTIMATE_EVERY_S) * active)
    expected = _memo("estimate", token, lambda: common.run_or_error(lambda: estimate(store, run_settings, request)))
    if expected is None:
        return
    _show_estimate(expected, request.mode)
    _simulated_not_counted(request, expected, token)
    if not common.has_key(settings):
        st.warning(
            "No Gemini API key is set: set GEMINI_API_KEY (or gemini_api_key in config.yaml) and "
            "restart the app. The example project above runs without one (simulated)."
        )
    nothing = expected.images == 0
    if nothing:
        st.success("Nothing to do: every image is done for the current prompt and category list.")
    if st.button("Start", type="primary", key="run_start", disabled=nothing or not common.has_key(settings)):
        job = common.run_or_error(lambda: manager.start(request, settings=run_settings))
        if job is not None:
            st.toast(f"Run #{job.run_id} started")
            st.rerun()  # the whole page: its card, History and the resume list


def _simulated_not_counted(request: JobRequest, expected: Estimate, token: object) -> None:
    """After the example project, say why its images are still to do: simulated results never count as done."""
    simulated = _memo("simulated_datasets", token, lambda: store.simulated_datasets(list(request.datasets)))
    if not simulated:
        return
    # planning.plan(simulated=True) is what a simulated run would still do: the difference is covered only by
    # simulated results, which a real run does again.
    left = _memo("simulated_left", token, lambda: len(_simulated_work(request)))
    covered = max(expected.images - left, 0)
    st.info(
        f"{common.plain(', '.join(simulated))} {'holds' if len(simulated) == 1 else 'hold'} simulated results "
        "from the example project (the built-in fake Gemini server). Simulated results do not count toward a "
        f"real run: the estimate still counts {count(covered, 'image')} they cover, and a real run labels them "
        "with the model.",
        icon=":material/science:",
    )


def _simulated_work(request: JobRequest) -> pd.DataFrame:
    """The work list a simulated run of `request` would have (simulated results count as done for it)."""
    return plan(store, request, simulated=True)[1]


def _test_connection(run_settings: Settings) -> None:
    """One small real request with the real schema; the report stays until the next test."""
    if st.button(
        "Test connection",
        key="run_test_connection",
        disabled=not common.has_key(run_settings),
        help="Sends one tiny request (a 64x64 image) with the real schema: costs a fraction of a cent.",
    ):
        with st.spinner("Sending one small request ..."):
            st.session_state["run_check_report"] = common.run_or_error(
                lambda: check_connection(run_settings, ensure_categories(store), run_settings.max_categories)
            )
    report = st.session_state.get("run_check_report")
    # A report is about the model and tier it tested: once either changes, it no longer says anything.
    if report is not None and (report.model, report.service_tier) == (
        run_settings.caption_model,
        run_settings.service_tier,
    ):
        show = st.success if report.ok else st.error
        show("\n\n".join(common.plain(line) for line in report.lines()))


def _memo(name: str, token: object, read: Callable[[], T]) -> T:
    """`read()`, kept while `token` stays the same, so an idle tick of a fragment asks the database nothing.
    A None (an error, shown as it happened) is not kept: the next tick asks again and shows it again."""
    memo = st.session_state.setdefault(MEMO, {})
    kept = memo.get(name)
    if kept is not None and kept[0] == token:
        return kept[1]
    value = read()
    if value is not None:
        memo[name] = (token, value)
    return value


def _states() -> State:
    """Where the newest runs stand in the store (id, status, done, failed): a small read, done every tick."""
    return tuple(store.run_states(limit=HISTORY_LIMIT, kinds=MODES))


def _statuses(states: State) -> tuple[tuple[int, str], ...]:
    return tuple((run_id, status) for run_id, status, _, _ in states)


def _redraw_page_when_runs_moved(states: State) -> None:
    """A full run of the page notes the runs' statuses it drew with; a tick that finds them changed (a run
    started, paused or ended) redraws the whole page, so the start form and the resume list follow."""
    if st.session_state.pop(FULL_RUN, False):
        st.session_state[DRAWN_WITH] = _statuses(states)
    elif st.session_state.get(DRAWN_WITH) != _statuses(states):
        st.rerun(scope="app")


@st.fragment(run_every=1)
def _live(names: list[str]) -> None:
    """Everything a run changes, redrawn together once a second from the job manager and the store; what the
    store holds is read again only when its runs moved (their failures and totals are written with them)."""
    states = _states()
    _redraw_page_when_runs_moved(states)
    history = _memo("history", states, lambda: store.runs(limit=HISTORY_LIMIT, kinds=MODES))
    _progress()
    _resume_stopped(history)
    if names:
        _failures(names, states)
    _history(history, states)


def _progress() -> None:
    """The jobs of this process; they run regardless of this page (a finished one's clock stands still)."""
    jobs = manager.jobs()
    st.subheader("Progress")
    if not jobs:
        st.caption("No run started since the app started. Runs stopped earlier can be resumed below.")
        return
    for job in jobs[:5]:
        common.progress_card(job, job.progress())


def _resume_stopped(history: pd.DataFrame) -> None:
    running = {job.run_id for job in manager.active()}
    stopped = history[history["status"].isin(RESUMABLE) & ~history["id"].isin(running)]
    if stopped.empty:
        return
    labels = {
        int(row["id"]): common.visible(
            f"#{row['id']} {row['kind']} on {row['datasets']} ({row['status']}, "
            f"{row['done']:,}/{row['total']:,})" + (" simulated" if row["simulated"] else "")
        )
        for row in stopped.to_dict("records")
    }
    left, right = st.columns([3, 1])
    chosen = left.selectbox("Resume a stopped run", list(labels), format_func=labels.__getitem__, key="resume_choice")
    if right.button("Resume run", key="resume_run") and chosen is not None:
        simulated = bool(stopped[stopped["id"] == chosen]["simulated"].iloc[0])
        options = {"settings": demo.simulated_settings(settings), "simulated": True} if simulated else {}
        job = common.run_or_error(lambda: manager.resume(int(chosen), **options))
        if job is not None:
            st.toast(f"Run #{job.run_id} resumed")
            st.rerun()


def _failures(names: list[str], token: object) -> None:
    st.subheader("Failures")
    chosen = st.multiselect("Datasets", names, default=names, format_func=common.visible, key="failure_datasets")
    if not chosen:
        return
    ids = [store.dataset_id(name) for name in chosen]
    grouped = _memo("failure_counts", (token, ids), lambda: store.failure_counts(ids))
    if grouped.empty:
        st.caption("No open failures: every attempt so far succeeded, or was retried successfully.")
        return
    st.dataframe(
        grouped,
        hide_index=True,
        width="stretch",
        key="failure_groups",
        column_config={"images": "Images", "example": "Example message", "last_seen": "Last seen"},
    )
    mode = st.radio("Retry with", MODES, format_func=MODE_LABELS.__getitem__, key="retry_mode", horizontal=True)
    if st.button("Retry failed", key="retry_failed", disabled=not common.has_key(settings)):
        request = JobRequest(tuple(chosen), mode=mode, retry_failed=True)
        job = common.run_or_error(lambda: manager.start(request))
        if job is not None:
            st.toast(f"Run #{job.run_id} retries {job.progress().total:,} images")
            st.rerun()
    if not common.has_key(settings):
        st.caption("Retrying needs a Gemini API key.")
    with st.expander("Every open failure"):
        # The CSV is made when clicked (every failure), the table shows the newest 1,000: a tick reads neither.
        st.download_button(
            "Download failures as CSV",
            lambda: common.frame_csv(store.open_failures(ids)),
            file_name="failures.csv",
            mime="text/csv",
            key="download_failures",
        )
        newest = _memo("open_failures", (token, ids), lambda: store.open_failures(ids).head(1000))
        st.dataframe(newest, hide_index=True, width="stretch")


def _history(runs: pd.DataFrame, states: State) -> None:
    st.subheader("History")
    if runs.empty:
        st.caption("No runs yet.")
        return
    st.dataframe(
        runs,
        hide_index=True,
        width="stretch",
        key="run_history",
        column_order=HISTORY_COLUMNS,
        column_config={
            "id": st.column_config.NumberColumn("Run", format="#%d", width=60),
            "kind": st.column_config.TextColumn("Mode", width=80),
            "status": st.column_config.TextColumn("Status", width=90),
            "simulated": st.column_config.CheckboxColumn("Simulated", width=75),
            "datasets": st.column_config.TextColumn("Datasets", width=140),
            "done": st.column_config.NumberColumn("Done", format="localized", width=65),
            "failed": st.column_config.NumberColumn("Failed", format="localized", width=65),
            "total": st.column_config.NumberColumn("Images", format="localized", width=70),
            "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="$%.4f", width=85),
            **TOKEN_COLUMNS,
            "model": st.column_config.TextColumn("Model", width=140),
            "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm", width=130),
            "finished_at": st.column_config.DatetimeColumn("Finished", format="YYYY-MM-DD HH:mm", width=130),
            "requests": st.column_config.NumberColumn("Requests", format="localized"),
            "message": st.column_config.TextColumn("Message"),
        },
    )
    if runs["simulated"].any():
        st.caption("Simulated runs ran against the built-in fake Gemini server: their output is not real.")
    totals = _memo("usage_by_dataset", states, store.usage_by_dataset)
    if not totals.empty:
        st.caption("Totals per dataset (all runs; simulated apart)")
        st.dataframe(
            totals,
            hide_index=True,
            width="stretch",
            key="dataset_totals",
            column_config={
                "dataset": st.column_config.TextColumn("Dataset"),
                "simulated": st.column_config.CheckboxColumn("Simulated"),
                "annotations": st.column_config.NumberColumn("Annotations", format="localized"),
                "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="$%.4f"),
                **TOKEN_COLUMNS,
            },
        )


# A full run: reads start afresh (another page may have changed the data), and the live fragment notes what
# the page was drawn with.
st.session_state[MEMO] = {}
st.session_state[FULL_RUN] = True
names = store.dataset_names()
example_project.render(prominent=not names)
if names:
    _start_form(names)
_live(names)
