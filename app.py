"""sslviz app: the router. Pages live in app_pages/, the work in the sslviz library.

    streamlit run app.py        (or: sslviz app)

Later pages slot into a section below; each page is one file in app_pages/
(not pages/: Streamlit treats a pages/ folder as its older folder-based navigation, which breaks
deep links such as /runs?run=3 on a fresh server).
"""

import streamlit as st

from sslviz.ui.resources import startup, wait_for_warm_up


def main() -> None:
    st.set_page_config(page_title="sslviz", page_icon=":material/blur_on:", layout="wide")
    startup()  # once per workspace: open the store, bring in the demo dataset if it is empty

    datasets = st.Page("app_pages/datasets.py", title="Datasets", icon=":material/photo_library:")
    # "/" shows the Datasets page under its own URL, so /datasets works as a link or bookmark too
    # (a default page only answers at "/").
    home = st.Page(
        lambda: st.switch_page(datasets),
        title="Home",
        url_path="home",
        default=True,
        visibility="hidden",
    )

    pages = {
        "Data": [home, datasets],
        "Train": [
            st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
            st.Page("app_pages/runs.py", title="Runs", icon=":material/monitoring:"),
        ],
        "Explore": [
            st.Page("app_pages/explorer.py", title="Explorer", icon=":material/scatter_plot:"),
            st.Page("app_pages/labeling.py", title="Label and predict", icon=":material/label:"),
            st.Page("app_pages/features.py", title="Features", icon=":material/grid_view:"),
        ],
        "Results": [
            st.Page(
                "app_pages/rotation.py", title="Rotation results", icon=":material/rotate_right:"
            ),
            st.Page(
                "app_pages/colorization.py", title="Colorization results", icon=":material/palette:"
            ),
            st.Page("app_pages/jigsaw.py", title="Jigsaw results", icon=":material/extension:"),
            st.Page("app_pages/demo.py", title="Live demo", icon=":material/photo_camera:"),
        ],
    }

    page = st.navigation(pages)
    # The start-up warm-up imports torch and umap in a thread: a page importing them at the
    # same moment waits for it to finish (else it could get a half-initialised module).
    wait_for_warm_up(page.url_path)
    page.run()


# Streamlit runs this file as __main__. Ingestion's worker processes are spawned (the server is
# threaded) and re-import the main module as __mp_main__: the guard keeps them from running the app.
if __name__ == "__main__":
    main()
