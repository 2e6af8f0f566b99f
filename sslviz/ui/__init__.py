"""The app's side of the library: the only package under ``sslviz`` that imports streamlit.

``resources`` holds the cached store and the one-time start-up, ``widgets`` the pieces several pages
share (dataset picker, status badge, error boundary), ``runs_view`` the runs table and a run's
timing, ``curves`` the plotly figure builders. Pages import from here and stay thin.
"""
