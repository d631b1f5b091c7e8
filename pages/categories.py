"""Categories: not built yet; the page says what it will do."""

import streamlit as st

st.title("Categories")
st.info(
    'Coming next. Edit the category list (add, rename, merge, deactivate, delete, with definitions), '
    "import and export it in the seed's unique_categories.csv format, get suggestions from the data, and "
    're-categorize from stored descriptions.'
)
