"""The app frame: navigation, the sidebar status, and the process-wide store.

Start it with `python3 streamlit_app.py`: on first use that creates `.venv`, installs the requirements, then
runs `streamlit run` on 127.0.0.1 (see README).
"""

import sys

if __name__ == "__main__" and "streamlit" not in sys.modules:
    # Started as a plain script: set up .venv if needed and relaunch under Streamlit.
    from labeling.bootstrap import launch_app

    launch_app(sys.argv[1:])

import streamlit as st

st.set_page_config(page_title="Labeling", layout="wide")

DATASETS = st.Page("pages/datasets.py", title="Datasets", url_path="datasets")


def _start() -> None:
    """The root URL opens the Datasets page at its own path: Streamlit serves a default page at `/` only, so
    the start page cannot be the default if `/datasets` is to work as a link."""
    st.switch_page(DATASETS, query_params=st.query_params.to_dict())  # a link's parameters survive the hop


PAGES = [
    st.Page(_start, title="Start", default=True, visibility="hidden"),  # served at / only: not a link
    DATASETS,
    st.Page("pages/run.py", title="Run", url_path="run"),
    st.Page("pages/review.py", title="Review", url_path="review"),
    st.Page("pages/categories.py", title="Categories", url_path="categories"),
    st.Page("pages/compare.py", title="Compare", url_path="compare"),
    st.Page("pages/audit.py", title="Audit", url_path="audit"),
    st.Page("pages/export.py", title="Export", url_path="export"),
]
page = st.navigation(PAGES)

from labeling.annotators.providers import provider_for  # noqa: E402
from labeling.errors import LabelingError, StoreLockedError  # noqa: E402
from pages import common  # noqa: E402


def _sidebar() -> None:
    settings = common.settings()
    with st.sidebar:
        st.caption("Database")
        st.text(settings.db_path)
        common.remember_reviewer()
        st.text_input(
            "Reviewer",
            key=common.REVIEWER_KEY,
            placeholder="your name",
            help="Recorded with every human edit (default: `reviewer` in config.yaml or LABELING_REVIEWER).",
        )
        provider = provider_for(settings)
        if provider.has_key(settings):
            st.success(common.plain(provider.key_status(settings)), icon=":material/key:")
        else:
            st.warning(common.plain(provider.key_status(settings)), icon=":material/key_off:")
        _running_jobs()


@st.fragment(run_every=2)
def _running_jobs() -> None:
    """Jobs run in the background: this part of the sidebar re-reads them every 2 s."""
    try:
        common.job_manager()  # marks runs left running by a process that died as interrupted
        runs = common.store().active_runs()
    except LabelingError:
        return
    st.caption("Running jobs")
    if runs.empty:
        st.text("none")
    for run in runs.itertuples():
        simulated = ", simulated" if run.simulated else ""
        st.text(f"#{run.id} {run.kind}: {run.done:,}/{run.total:,} ({run.status}{simulated})")


@st.fragment(run_every=2)
def _waiting_for_database(message: str) -> None:
    """A command holds the file: say which and how far it is, and open the app once it lets go."""
    try:
        common.store()
    except StoreLockedError as exc:
        message = str(exc)
    else:
        st.rerun(scope="app")
    status = common.holder()
    if status is None:
        st.error(common.plain(message))
        return
    st.warning(common.plain(f"The database is in use by {status.line()}."), icon=":material/hourglass_top:")
    st.caption("The app opens it by itself when that command ends; this page follows.")


try:
    common.store()
except StoreLockedError as exc:
    _waiting_for_database(str(exc))
    st.stop()
except LabelingError as exc:
    st.error(common.plain(str(exc)))  # a damaged database: one line that says what to do
    st.stop()
_sidebar()
try:
    page.run()
except LabelingError as exc:  # the one place a page's unhandled core error becomes what the user reads
    st.error(common.plain(str(exc)))
