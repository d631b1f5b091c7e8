"""Export: not built yet; the page says what it will do."""

import streamlit as st

st.title("Export")
st.info(
    "Coming next. Export categorized CSVs in the seed's format (image_name,description,categories), "
    'Parquet, and charts as PNG or SVG.'
)
