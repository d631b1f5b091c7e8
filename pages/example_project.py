"""The example-project box, shared by the Datasets and Run pages: a newcomer tries the whole app without a key.

`render(prominent)` draws it as a bordered box ("No datasets yet") when there is nothing else to show, else as
an expander; its button creates the example datasets and starts their simulated run (labeling.demo).
"""

from __future__ import annotations

import streamlit as st

from pages import common


def render(prominent: bool) -> None:
    box = st.container(border=True) if prominent else st.expander("Try it without an API key: example project")
    with box:
        if prominent:
            st.subheader("No datasets yet")
        st.write(
            "Create an example project: REAL and GEN sample images drawn on this machine, imported as "
            "example-REAL and example-GEN, then described and categorized by a built-in fake Gemini "
            "server. Everything it produces is marked simulated; no request leaves this machine."
        )
        if st.button("Create an example project", key="create_example", type="primary" if prominent else "secondary"):
            from labeling import demo  # the fake Gemini server and the drawing load when asked for

            with st.spinner("Drawing the sample images ..."):
                job = common.run_or_error(
                    lambda: demo.run_example_project(common.job_manager(), common.store(), common.settings())
                )
            if job is not None:
                st.toast(f"Simulated run #{job.run_id} started")
                st.rerun()
