"""Caption, categorize, review and compare image datasets (REAL vs GEN) with Gemini.

This package is the UI-free core: the Streamlit pages and the `labeling` CLI are thin adapters over it.
"""

__version__ = "0.1.0"
