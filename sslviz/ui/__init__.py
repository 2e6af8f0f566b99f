"""The app's side of the library: the only package under ``sslviz`` that imports streamlit.
Pages import from here and stay thin.

Shared: ``resources`` (the cached store, start-up once), ``widgets`` (dataset picker, status
badge, error boundary), ``deep_links`` (a link to something gone says so), ``curves`` (plotly
figures of metrics), ``thumbnails``, ``label_colours``, ``colour_scale``; ``background_work``
(the background lanes pages poll) and ``work_process`` (the app's child process that does the
labeling page's long work).

Datasets      datasets_view
Train         train_form
Runs          runs_view, run_panel, heldout_view (also on result pages)
Results       results_view (shared), rotation_view, upright_view, jigsaw_view, colorization_view,
              features_view, saliency_view (also in the live demo)
Live demo     demo_view
Explorer      explorer_view, explorer_panels, data_checks_view, check_jobs, background_maps,
              map (the map widget, also on the labeling page), hover_thumbnails
Labeling      labeling_view, labeling_queue, labeling_predictions, background_requests,
              leaderboard_view
"""
