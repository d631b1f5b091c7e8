"""The server: Streamlit's app (streamlit_app.py) plus the routes that serve stored pictures by URL.

`streamlit run serve.py` finds `app` and runs it; `python3 streamlit_app.py` does that for you.
"""

import streamlit as st

from labeling.picture_routes import routes

app = st.App("streamlit_app.py", routes=routes(lambda: st.get_option("server.allowedHosts")))
