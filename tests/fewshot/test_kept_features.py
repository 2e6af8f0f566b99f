"""Work that depends on the embedding alone is computed once per embedding and kept: in a
process the same prepared features serve every prediction; across processes Poisson's views are
read from beside the embedding (rebuilt only when the embedding file changes), and the
predictions are the same as from views built afresh."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from finetune_helpers import first_per_class, make_labeled_dataset

from sslviz.fewshot import kept
from sslviz.fewshot.predict import predict, prepared_features
from sslviz.fewshot.predictors import Features
from sslviz.maps.embed import embed
from sslviz.store import Store


def test_views_are_built_once_per_embedding_and_read_back(store: Store, home: Path) -> None:
    truth = make_labeled_dataset(store, "toys", ("red", "green", "blue"), 12, size=16)
    emb = embed(store, "toys", "pixels")
    kept.forget()
    labels = first_per_class(truth, 2)
    first = predict(store, "toys", "pixels", labels, "poisson", embeddings=emb)
    features = prepared_features(store, emb)
    assert prepared_features(store, emb) is features  # one per embedding in a process
    saved = kept.views_file(emb)
    assert saved is not None and saved.exists()
    written = saved.stat().st_mtime_ns

    # one more label, as a new process would see it: nothing kept in memory, the views on disk
    kept.forget()
    more = dict(labels)
    extra = next(p for p in sorted(truth) if p not in labels)
    more[extra] = truth[extra]
    again = predict(store, "toys", "pixels", more, "poisson", embeddings=emb)
    assert saved.stat().st_mtime_ns == written  # read, not built and written again
    fresh = Features(np.asarray(emb.vectors), shared_scale=True)  # built from scratch
    loaded = prepared_features(store, emb).poisson_graphs
    assert len(loaded) == len(fresh.poisson_graphs)
    for a, b in zip(loaded, fresh.poisson_graphs, strict=True):
        assert (a != b).nnz == 0
    assert len(again.paths) == len(first.paths) == 36

    # a re-embedded source (a new file) gets new views, never the old ones
    kept.forget()
    os.utime(emb.file, ns=(written + 10**9, written + 10**9))
    predict(store, "toys", "pixels", more, "poisson", embeddings=emb)
    assert saved.stat().st_mtime_ns != written
