"""Run: not built yet; the page says what it will do."""

import streamlit as st

st.title("Run")
st.info(
    'Coming next. Run captioning and categorization with Gemini on chosen datasets: worker threads, a '
    "shared request-rate limit, retries that honour the server's retry delay, pause / resume / cancel, "
    'live progress with tokens and cost, and failures grouped by reason with retry. Until then, use '
    '`labeling import` with a seed output CSV to bring existing results in.'
)
