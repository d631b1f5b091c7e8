"""The server: Streamlit's app (streamlit_app.py) plus the routes that serve stored pictures by URL.

`streamlit run serve.py` finds `app` and runs it; `python3 streamlit_app.py` does that for you. The lifespan
opens the database when the server starts, so a `labeling` command on it runs through the app (README,
"The app and the command line on one database") before any browser has opened a page.
"""

import gc
import inspect
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from labeling import app_host, hosted, logs
from labeling.errors import LabelingError
from labeling.picture_routes import routes
from labeling.settings import load_settings


def _warm() -> None:
    """While the browser loads Streamlit's bundle, import what the start page needs and take two costs off the
    first script run: the first visit then runs the script without waiting for them."""
    import pyarrow  # noqa: F401 - pandas' strings, the first table's serialization

    import pages.common
    import pages.datasets_s3
    import pages.example_project  # noqa: F401
    from labeling import datasets, jobs  # noqa: F401 - the Datasets page, the sidebar's running jobs

    inspect.stack()  # what Streamlit's first element in a process calls (is_repl): it indexes every loaded module
    # Streamlit's full collection after every script run (runner.postScriptGC) takes 70 ms over all of this:
    # frozen, the libraries loaded so far are skipped (the imports leave some 20 unreachable objects behind).
    gc.freeze()


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    settings = load_settings()
    hosted.install_streams()  # first: the terminal's log handler then writes where a command's caller reads
    logs.configure(settings.db_path)
    host = app_host.host(settings)
    with suppress(LabelingError):  # held by a command: the host opens it when that ends; damaged: pages say so
        host.store()
    # The frame routes every page (st.navigation): no first visit runs a page as a bare `pages/` script.
    PagesManager.uses_pages_directory = False
    threading.Thread(target=_warm, name="warm-imports", daemon=True).start()
    yield None
    host.close()  # jobs still running stop as interrupted, to resume on the next start


app = st.App("streamlit_app.py", routes=routes(lambda: st.get_option("server.allowedHosts")), lifespan=lifespan)
