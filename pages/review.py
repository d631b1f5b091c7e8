"""Review: not built yet; the page says what it will do."""

import streamlit as st

st.title("Review")
st.info(
    'Coming next. Review images beside their editable descriptions and categories: a paged gallery with '
    'filters, a keyboard-driven focus view, bulk actions, an edit log with undo; human work is never '
    'overwritten by a model.'
)
