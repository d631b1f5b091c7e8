"""Compare: not built yet; the page says what it will do."""

import streamlit as st

st.title("Compare")
st.info(
    'Coming next. Compare category distributions between datasets (REAL vs GEN): raw and normalized '
    'grouped bars, per-category shares with 95% intervals, tests of equal shares adjusted for many '
    'categories.'
)
