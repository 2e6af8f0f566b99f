"""The one job runner (DESIGN 3.3): every long piece of work (pretext training, fine-tuning,
embedding + map, ingest, data checks) is a run in the store, carried out by a separate worker process.

jobs        submit, schedule onto device slots, cancel, resume, reap, delete
execute     THE executor wrapper: claim, heartbeat, the kind's executor, crash -> failed with its
            traceback, Ctrl-C -> cancelled (worker, foreground CLI and the Python API all use it)
worker      ``python -m sslviz.runner.worker RUN_ID``: one run, then hands over its slot
heartbeat   beats only while the work shows signs of life, so a stuck worker is reaped
progress    how far a run is and how long it has left, for the CLI and the pages
timing      when an active run will end, the queue ahead of it included (the Runs page's ETA)

It imports only ``core`` and ``store``: executors are reached through ``store.kinds``, so the runner
never imports the code it carries out (tests/test_layering.py).
"""
