"""Work that depends on the embedding alone is computed once per embedding and kept: in a
process the same prepared features serve every prediction; across processes Poisson's views are
read from beside the embedding (rebuilt only when the embedding file changes), each label's unit
potential is computed once (the next prediction, in this process or a new one, computes only the
new label's), and the predictions are the same as from Poisson solved afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from finetune_helpers import first_per_class, make_labeled_dataset

from sslviz.fewshot import kept, poisson, saved_views
from sslviz.fewshot.predict import predict, prepared_features
from sslviz.fewshot.predictors import Features, encode_labels
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


def _one_more(truth: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    extra = next(p for p in sorted(truth) if p not in labels)
    return {**labels, extra: truth[extra]}


def test_each_labels_potential_is_computed_once_and_the_answer_is_the_same(
    store: Store, home: Path
) -> None:
    truth = make_labeled_dataset(store, "toys", ("red", "green", "blue"), 12, size=16)
    emb = embed(store, "toys", "pixels")
    kept.forget()
    labels = first_per_class(truth, 2)
    predict(store, "toys", "pixels", labels, "poisson", embeddings=emb)
    first = prepared_features(store, emb).poisson
    assert first.computed == 6  # one unit potential per label, every view in one batch
    units = first.units_file()
    assert units is not None and units.exists()

    # a new process (nothing in memory) with one more label computes that label's column only
    kept.forget()
    more = _one_more(truth, labels)
    again = predict(store, "toys", "pixels", more, "poisson", embeddings=emb)
    assert prepared_features(store, emb).poisson.computed == 1

    # the same answer as Poisson solved afresh: new views, every label's sources propagated at
    # once (no unit potentials), from an embedding without files
    fresh = Features(np.asarray(emb.vectors), shared_scale=True)
    idx = np.array([again.paths.index(p) for p in sorted(more)])
    y, classes = encode_labels([more[p] for p in sorted(more)])
    direct = poisson.predict(fresh.poisson.views, idx, y, len(classes))  # (N, K)
    np.testing.assert_allclose(again.prediction.probabilities, direct, atol=1e-5)
    assert (again.prediction.index == direct.argmax(axis=1)).all()


def test_sslviz_predict_again_reads_what_the_first_one_kept(
    store: Store, home: Path, tmp_path: Path
) -> None:
    truth = make_labeled_dataset(store, "toys", ("red", "green", "blue"), 8, size=16)
    labels = first_per_class(truth, 2)
    more = _one_more(truth, labels)

    def run(given: dict[str, str], out: Path) -> list[str]:
        file = tmp_path / "labels.csv"
        file.write_text("path,label\n" + "".join(f"{p},{v}\n" for p, v in given.items()))
        env = {**os.environ, "SSLVIZ_HOME": str(home), "OMP_NUM_THREADS": "1"}
        args = ["predict", "pixels", "--dataset", "toys", "--labels", str(file), "--out", str(out)]
        done = subprocess.run(
            [sys.executable, "-m", "sslviz", *args, "--method", "poisson"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return out.read_text().splitlines()

    run(labels, tmp_path / "first.csv")
    emb = embed(store, "toys", "pixels")
    views = kept.views_file(emb)
    units = prepared_features(store, emb).poisson.units_file()
    written = views.stat().st_mtime_ns
    assert saved_views.load_units(units, kept._stamp(emb.file), 2)["rows"].tolist() == sorted(
        list(emb.paths).index(p) for p in labels
    )
    rows = run(more, tmp_path / "again.csv")
    assert views.stat().st_mtime_ns == written  # the views read, not built again
    assert len(saved_views.load_units(units, kept._stamp(emb.file), 2)["rows"]) == len(more)
    # the same file as a prediction in this process with nothing kept at all
    for file in views.parent.iterdir():
        file.unlink()
    kept.forget()
    scratch = predict(store, "toys", "pixels", more, "poisson", embeddings=emb)
    assert [r.split(",")[1] for r in rows[1:]] == list(scratch.final_labels)
