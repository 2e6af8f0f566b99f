"""The labeling page's "label these next" queue: a batch of suggestions
(``sslviz.fewshot.suggest``), each with its click-to-label button, kept while it is being labeled.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import streamlit as st

from sslviz.fewshot.predictors import Features
from sslviz.fewshot.suggest import suggest
from sslviz.store import Store
from sslviz.store.rows import Session
from sslviz.ui.labeling_view import QUEUE, QUEUE_KEY, thumbnails_with_buttons


def _labels_key(labels: dict[str, str]) -> str:
    return hashlib.blake2b(repr(sorted(labels.items())).encode(), digest_size=10).hexdigest()


# --- "label these next" -------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=4)
def _suggest_features(_emb: Any, file: str) -> Features:
    # kept for the embedding's life: what suggest derives from it alone is computed once
    return Features(np.asarray(_emb.vectors))


@st.cache_resource(show_spinner=False, max_entries=6)
def _suggest(
    _emb: Any, file: str, labels_key: str, _labeled: tuple[int, ...], _names: tuple[str, ...]
) -> tuple[np.ndarray, str]:
    features = _suggest_features(_emb, file)
    labeled = np.asarray(_labeled, np.int64)
    picked = suggest(features.vectors, labeled, list(_names), n=QUEUE, features=features)
    return _emb.image_ids[picked.indices], picked.strategy


def _kept_batch(memo: dict[str, Any] | None, labels: dict[int, str], file: str) -> Any:
    """The queue's batch still to be labeled, or None when it must be chosen again: a batch is
    kept while every label given since it was chosen went to one of its images and at least half
    of it is left (batch active learning: choosing again after every click costs a second or
    more of the page's time, and moves the images the person is looking at)."""
    if memo is None or memo["file"] != file:
        return None
    batch = set(memo["ids"])
    outside = {i: n for i, n in labels.items() if i not in batch}
    left = [i for i in memo["ids"] if i not in labels]
    if outside != memo["outside"] or len(left) < (len(memo["ids"]) + 1) // 2:
        return None
    return np.asarray(left, dtype=np.int64), memo["strategy"]


def next_queue(store: Store, session: Session, emb: Any) -> None:
    labels = store.sessions.label_of(session.id)
    memo_key = f"lb_queue_{session.id}"
    kept = _kept_batch(st.session_state.get(memo_key), labels, str(emb.file))
    if kept is not None:
        ids, strategy = kept
    else:
        position = {int(i): k for k, i in enumerate(emb.image_ids)}
        labeled = tuple(position[i] for i in sorted(labels) if i in position)
        names = tuple(labels[i] for i in sorted(labels) if i in position)
        key = _labels_key({str(i): n for i, n in labels.items()})
        with st.spinner("Choosing what to label next…"):
            ids, strategy = _suggest(emb, str(emb.file), key, labeled, names)
        batch = [int(i) for i in ids]
        st.session_state[memo_key] = {
            "file": str(emb.file),
            "ids": batch,
            "strategy": strategy,
            "outside": {i: n for i, n in labels.items() if i not in set(batch)},
        }
    why = (
        "typical images of groups no label covers yet (TypiClust)"
        if strategy == "typiclust"
        else "the least certain predictions, spread over the data"
    )
    if strategy.startswith("uncovered first"):
        why = "first, images that look like none of your labels; then " + (
            "typical images of uncovered clusters"
            if strategy.endswith("typiclust")
            else "the least certain predictions"
        )
    st.caption(
        f"{len(ids)} images worth labeling now: {why}. A labeled one leaves the list; a new "
        "batch is chosen once half of it is labeled or you label elsewhere."
    )
    thumbnails_with_buttons(store, session, ids, key=QUEUE_KEY, columns=4)
