"""Labeling sessions in the store: every label on disk at once (a second connection and a reopened
store see it), several sessions per dataset, label names renamed/merged/deleted, undo, import."""

from __future__ import annotations

from pathlib import Path

import pytest
from finetune_helpers import make_labeled_dataset

from sslviz.core.errors import UserError
from sslviz.fewshot.labeling import (
    create_session,
    import_labels,
    label_images,
    labels_by_path,
    undo,
    unlabel_images,
)
from sslviz.store import Store


@pytest.fixture
def truth(store: Store) -> dict[str, str]:
    return make_labeled_dataset(store, "toys", ("red", "green", "blue"), 4, size=16)


def test_labels_are_on_disk_at_once(store: Store, home: Path, truth: dict[str, str]) -> None:
    session = create_session(store, "toys", "pixels")
    other = Store.open(home)  # a second browser / process: its own connection
    paths = sorted(truth)[:3]
    label_images(store, session.id, paths, "red")
    assert labels_by_path(other, session.id) == dict.fromkeys(paths, "red")
    label_images(other, session.id, paths[:1], "blue")  # written by the other one
    assert labels_by_path(store, session.id)[paths[0]] == "blue"
    other.close()
    store.close()
    reopened = Store.open(home)  # an app restart
    assert labels_by_path(reopened, session.id) == {
        paths[0]: "blue",
        **dict.fromkeys(paths[1:], "red"),
    }
    assert [s.name for s in reopened.sessions.list()] == ["session 1"]
    reopened.close()


def test_several_sessions_per_dataset_keep_their_own_labels(
    store: Store, truth: dict[str, str]
) -> None:
    a = create_session(store, "toys", "pixels")
    b = create_session(store, "toys", "random", name="second look")
    path = sorted(truth)[0]
    label_images(store, a.id, [path], "x")
    label_images(store, b.id, [path], "y")
    assert labels_by_path(store, a.id) == {path: "x"} and labels_by_path(store, b.id) == {path: "y"}
    assert [s.name for s in store.sessions.list(a.dataset_id)] == ["session 1", "second look"]
    with pytest.raises(UserError, match="already has a session"):
        create_session(store, "toys", "pixels", name="second look")
    store.sessions.delete(b.id)
    assert [s.id for s in store.sessions.list()] == [a.id]


def test_names_rename_merge_delete_and_undo_each(store: Store, truth: dict[str, str]) -> None:
    s = create_session(store, "toys", "pixels")
    p = sorted(truth)
    label_images(store, s.id, p[:2], "cat")
    label_images(store, s.id, p[2:4], "dog")
    store.sessions.rename_label(s.id, "dog", "hound")
    assert labels_by_path(store, s.id)[p[2]] == "hound"
    store.sessions.merge_labels(s.id, "hound", "cat")
    assert set(labels_by_path(store, s.id).values()) == {"cat"}
    assert [(n.name, n.count) for n in store.sessions.label_names(s.id)] == [("cat", 4)]
    assert store.sessions.delete_label(s.id, "cat") == 4
    assert labels_by_path(store, s.id) == {}
    assert undo(store, s.id).description.startswith("delete label")
    assert set(labels_by_path(store, s.id).values()) == {"cat"}
    undo(store, s.id)  # the merge
    undo(store, s.id)  # the rename
    assert labels_by_path(store, s.id) == {p[0]: "cat", p[1]: "cat", p[2]: "dog", p[3]: "dog"}
    store.sessions.add_label_name(s.id, "bird")
    assert [n.name for n in store.sessions.label_names(s.id)] == ["cat", "dog", "bird"]
    with pytest.raises(UserError, match="empty"):
        store.sessions.add_label_name(s.id, "  ")


def test_undo_takes_back_exactly_the_last_action(store: Store, truth: dict[str, str]) -> None:
    s = create_session(store, "toys", "pixels")
    p = sorted(truth)
    label_images(store, s.id, p[:3], "a")
    label_images(store, s.id, p[1:2], "b")  # relabel one
    unlabel_images(store, s.id, p[2:3])
    assert labels_by_path(store, s.id) == {p[0]: "a", p[1]: "b"}
    assert "unlabel" in undo(store, s.id).description
    assert labels_by_path(store, s.id) == {p[0]: "a", p[1]: "b", p[2]: "a"}
    undo(store, s.id)
    assert labels_by_path(store, s.id) == dict.fromkeys(p[:3], "a")
    undo(store, s.id)
    assert labels_by_path(store, s.id) == {} and store.sessions.label_names(s.id) == []
    assert undo(store, s.id) is None
    assert label_images(store, s.id, [], "a") == 0  # nothing changed: nothing to undo
    assert store.sessions.actions(s.id) == []


def test_import_adds_labels_and_a_bad_file_imports_nothing(
    store: Store, truth: dict[str, str], tmp_path: Path
) -> None:
    s = create_session(store, "toys", "pixels")
    p = sorted(truth)
    good = tmp_path / "good.csv"
    good.write_text("path,label\n" + "".join(f"{x},{truth[x]}\n" for x in p[:4]))
    assert import_labels(store, s.id, good) == 4
    assert labels_by_path(store, s.id) == {x: truth[x] for x in p[:4]}
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,label\n{p[5]},red\nnope.png,red\n")
    with pytest.raises(UserError, match=r"line 3 \('nope.png'\)"):
        import_labels(store, s.id, bad)
    assert len(labels_by_path(store, s.id)) == 4  # p[5] was not imported either
    assert "import 4 labels" in undo(store, s.id).description
    assert labels_by_path(store, s.id) == {}


def test_a_session_needs_a_run_of_its_own_dataset(store: Store, truth: dict[str, str]) -> None:
    with pytest.raises(UserError, match="unknown source"):
        create_session(store, "toys", "colour-histogram")
    with pytest.raises(UserError, match="no run with id 99"):
        create_session(store, "toys", "99")


def test_labels_from_the_suggestions_are_recorded_and_flag_the_estimate(
    store: Store, home: Path
) -> None:
    """The store keeps which labels were given to suggested images; when most are, the estimate
    says CV on them is optimistic (a flag in the estimate and its JSON, a note in the text)."""
    from sslviz.fewshot.estimate import ACTIVE_NOTE
    from sslviz.fewshot.labeling import suggested_paths
    from sslviz.fewshot.predict import predict

    truth = make_labeled_dataset(store, "many", ("red", "green", "blue"), 10, size=16)
    session = create_session(store, "many", "pixels")
    by_class = {c: sorted(p for p, v in truth.items() if v == c) for c in ("red", "green", "blue")}
    for name, paths in by_class.items():
        label_images(store, session.id, paths[:1], name)  # chosen by hand
        label_images(store, session.id, paths[1:4], name, suggested=True)  # from the queue
    reopened = Store.open(home)
    picked = suggested_paths(reopened, session.id)
    assert picked == {p for paths in by_class.values() for p in paths[1:4]}
    labels = labels_by_path(reopened, session.id)
    result = predict(reopened, "many", "pixels", labels, "poisson", suggested=picked)
    assert result.estimate.suggested_share == pytest.approx(9 / 12)
    assert result.estimate.actively_chosen
    payload = result.to_json()
    assert payload["actively_chosen"] is True and payload["estimate_note"] == ACTIVE_NOTE
    assert payload["majority_rate"] == pytest.approx(1 / 3)  # 4 of each: 4 / 12
    by_hand = predict(reopened, "many", "pixels", labels, "poisson", suggested=set())
    assert not by_hand.estimate.actively_chosen and by_hand.to_json()["estimate_note"] is None
    reopened.close()
