"""sslviz app: the router. Pages live in app_pages/, the work in the sslviz library.

    streamlit run app.py        (or: sslviz app)

Later pages slot into a section below; each page is one file in app_pages/
(not pages/: Streamlit treats a pages/ folder as its older folder-based navigation, which breaks
deep links such as /runs?run=3 on a fresh server).
"""

import streamlit as st

from sslviz.ui.resources import startup

st.set_page_config(page_title="sslviz", page_icon=":material/blur_on:", layout="wide")
startup()  # once per workspace: open the store, bring in the demo dataset if it is empty

DATASETS = st.Page("app_pages/datasets.py", title="Datasets", icon=":material/photo_library:")
# "/" shows the Datasets page under its own URL, so /datasets works as a link or bookmark too
# (a default page only answers at "/").
HOME = st.Page(
    lambda: st.switch_page(DATASETS),
    title="Home",
    url_path="home",
    default=True,
    visibility="hidden",
)

PAGES = {
    "Data": [HOME, DATASETS],
    "Train": [
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/monitoring:"),
    ],
}

st.navigation(PAGES).run()
