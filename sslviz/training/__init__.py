"""The training engine: one readable loop that any pretext task plugs into.

config        TrainConfig (saved in every checkpoint), defaults per dataset size, config checks
feasibility   whether a config fits this machine (disk, memory, steps), before a run exists
expected_time how long a run will take, said before it starts
split         which images are held out
batches       held-out split, batch plan, batched augmentation, prefetch (from the uint8 cache)
train         create a run's request, the pretext executor, the loop itself
prepare       the loop's stages before it: data and batch plan, model, optimizer, schedule, checkpoint
callbacks     what the loop reports through (StoreLogger writes metrics and progress)
evaluate      held-out pretext metrics (``sslviz eval``), model loading
figures       the headline held-out figures, labelled and formatted once
chance        chance level, a 95% interval, and whether the run learned anything
feature_quality   the per-checkpoint feature-quality curve (``sslviz status``) and its advice
distributed   DDP helpers: the same entry point under ``torchrun -m sslviz train``

The job runner (``sslviz.runner``) claims a run, keeps its heartbeat and records how it ended;
this package only trains.
"""
