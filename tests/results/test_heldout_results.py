"""Per-image held-out results agree with ``sslviz eval`` on the same run (same images, same
puzzles), and their helpers keep their properties."""

from __future__ import annotations

import itertools

import pytest
import torch
from trained_runs import Trained

from sslviz.pretext.jigsaw import shuffled_and_reassembled
from sslviz.pretext.permutations import maximal_hamming_permutations
from sslviz.results import held_out
from sslviz.results.apply import cached_run_model
from sslviz.results.colorization_answers import at_temperature, colorization_results, decode_inputs
from sslviz.results.jigsaw_answers import JigsawResults, permutation_set_stats
from sslviz.results.rotation_answers import RotationResults, rotation_probabilities
from sslviz.store import Store
from sslviz.training.evaluate import MAX_EVAL_IMAGES, evaluate_run


def _results(store: Store, run_id: int):
    loaded = cached_run_model(store, run_id)
    return loaded, held_out(store, loaded.run, loaded.config)


def rotation_results(model, paths: list[str], images: torch.Tensor) -> RotationResults:
    """Computed fresh here (the pages read the answers the run stored)."""
    return RotationResults(paths, images, rotation_probabilities(model, images))


def jigsaw_results(task, model, paths: list[str], images: torch.Tensor, *, seed: int):
    """One puzzle per held-out image, cut as ``sslviz eval`` cuts them, solved fresh."""
    layout = task.eval_layout(images, seed)
    logits = task.puzzle_logits(model, images, layout)
    return JigsawResults(paths, images, layout, task.permutations.cpu(), logits)


def test_held_out_images_are_the_evaluated_split(trained: Trained, store: Store) -> None:
    loaded, held = _results(store, trained.rotation)
    assert 0 < len(held) <= MAX_EVAL_IMAGES
    assert held.images.shape == (len(held), 3, 32, 32) and held.images.dtype == torch.uint8
    paths = [image.path for image in store.datasets.images(loaded.run.dataset_id)]
    assert held.paths == [paths[r] for r in held.rows]


def test_rotation_confusion_equals_eval(trained: Trained, store: Store) -> None:
    loaded, held = _results(store, trained.rotation)
    results = rotation_results(loaded.model, held.paths, held.images)
    assert results.probabilities.shape == (len(held), 4, 4)
    assert torch.allclose(results.probabilities.sum(dim=2), torch.ones(len(held), 4), atol=1e-4)
    assert results.confusion().tolist() == evaluate_run(store, trained.rotation)["confusion"]
    wrong = results.misclassified()
    assert len(wrong) == int(results.confusion().sum() - results.confusion().trace())
    assert [w.confidence for w in wrong] == sorted((w.confidence for w in wrong), reverse=True)


def test_rotation_ambiguity_is_ordered_and_thresholded(trained: Trained, store: Store) -> None:
    loaded, held = _results(store, trained.rotation)
    results = rotation_results(loaded.model, held.paths, held.images)
    top = results.top_probability()
    assert ((top >= 0.25 - 1e-6) & (top <= 1 + 1e-6)).all()
    typical = results.typical_sureness()
    every = results.ambiguous(below=1.01 / typical)  # a cut above every sureness
    assert sorted(every) == list(range(len(held)))
    assert [float(top[i]) for i in every] == sorted(float(top[i]) for i in every)
    assert all(float(top[i]) < 0.9 * typical for i in results.ambiguous(below=0.9))


def _rotation_results(sureness: list[float]) -> RotationResults:
    """Results whose images have the given sureness: each turned copy gives its true angle
    that probability and splits the rest evenly."""
    probabilities = torch.empty(len(sureness), 4, 4)
    for i, p in enumerate(sureness):
        probabilities[i] = torch.full((4, 4), (1 - p) / 3)
        probabilities[i].fill_diagonal_(p)
    images = torch.zeros(len(sureness), 3, 8, 8, dtype=torch.uint8)
    return RotationResults([f"{i}.png" for i in range(len(sureness))], images, probabilities)


def test_ambiguity_of_a_weak_model_says_the_model_is_unsure() -> None:
    # a model barely above chance is unsure about everything: every image is below 50% sure in
    # absolute terms (none stands out from the typical one), and that is said of the model
    weak = _rotation_results([0.28, 0.30, 0.31, 0.29, 0.33, 0.27, 0.30, 0.32])
    said = weak.ambiguity()
    assert said.images == [5, 0, 3, 1, 6, 2, 7, 4]  # least sure first
    assert (said.absolute, said.relative, said.model_unsure) == (8, 0, True)


def test_ambiguity_of_a_strong_model_singles_out_images() -> None:
    # a good model unsure about two images flags exactly those, the least sure first
    strong = _rotation_results([0.97, 0.95, 0.40, 0.96, 0.98, 0.30, 0.94, 0.97])
    assert strong.ambiguous() == [5, 2]
    # 0.55 passes the absolute cut (50%) but not the relative one (0.6 x 0.96)
    sure = _rotation_results([0.97, 0.95, 0.55, 0.96, 0.98, 0.96, 0.94, 0.97])
    said = sure.ambiguity()
    assert (said.images, said.absolute, said.relative, said.model_unsure) == ([2], 0, 1, False)


def test_colorization_summary_equals_eval(trained: Trained, store: Store) -> None:
    loaded, held = _results(store, trained.colorization)
    summary = colorization_results(loaded.task, loaded.model, held.paths, held.images).summary()
    expected = evaluate_run(store, trained.colorization)
    for key in ("psnr", "psnr_faithful", "psnr_grey", "colourfulness", "colourfulness_truth"):
        assert summary[key] == pytest.approx(expected[key], abs=1e-3)
    vivid = colorization_results(
        loaded.task, loaded.model, held.paths, held.images, temperature=0.1
    )
    assert vivid.temperature == 0.1
    assert vivid.summary()["psnr_grey"] == pytest.approx(summary["psnr_grey"])


def test_jigsaw_answers_add_up_to_eval(trained: Trained, store: Store) -> None:
    loaded, held = _results(store, trained.jigsaw)
    results = jigsaw_results(
        loaded.task, loaded.model, held.paths, held.images, seed=loaded.config.seed
    )
    expected = evaluate_run(store, trained.jigsaw)
    assert (results.hamming == 0).float().mean().item() == pytest.approx(expected["accuracy"])
    assert results.top5.float().mean().item() == pytest.approx(expected["top5"])
    assert results.hamming.float().mean().item() == pytest.approx(expected["mean_hamming"])
    assert sum(results.hamming_histogram()) == len(held)
    shuffled, reassembled, original = results.boards(0)
    assert shuffled.shape == reassembled.shape == original.shape
    if results.hamming[0] == 0 and not results.layout.grey[0].any():
        assert torch.equal(reassembled, original)


@pytest.mark.parametrize("n", [30, 100])
def test_permutation_set_stats_match_a_direct_count(n: int) -> None:
    perms = maximal_hamming_permutations(n)
    size, min_d = permutation_set_stats(perms)
    direct = min(int((a != b).sum()) for a, b in itertools.combinations(perms[: min(n, 60)], 2))
    assert size == n and 2 <= min_d <= direct
    assert permutation_set_stats(perms[:1]) == (1, 0)


def test_reassembly_by_the_true_permutation_restores_the_tiles() -> None:
    perms = maximal_hamming_permutations(30)
    tiles = torch.arange(9 * 3 * 4 * 4, dtype=torch.uint8).view(9, 3, 4, 4)
    for p in perms[:5]:
        shuffled, back = shuffled_and_reassembled(tiles, p, p)
        assert torch.equal(back, tiles)
        assert torch.equal(shuffled[0], tiles[p[0]])  # position 0 holds tile p[0]
    _, wrong = shuffled_and_reassembled(tiles, perms[0], perms[1])
    misplaced = sum(not torch.equal(wrong[k], tiles[k]) for k in range(9))
    assert misplaced == int((perms[0] != perms[1]).sum())


def test_a_new_temperature_re_decodes_without_a_model_pass(trained: Trained, store: Store) -> None:
    # the slider's path: the model's outputs kept once, each temperature only decoded again,
    # with exactly the colours a full pass gives (and the calibrated faithful decode kept)
    loaded, held = _results(store, trained.colorization)
    base = colorization_results(loaded.task, loaded.model, held.paths, held.images)
    inputs = decode_inputs(loaded.task, loaded.model, held.images)
    assert inputs is not None
    for t in (0.1, 0.7):
        quick = at_temperature(base, loaded.task, inputs, t)
        full = colorization_results(
            loaded.task, loaded.model, held.paths, held.images, temperature=t
        )
        assert torch.equal(quick.colour, full.colour)
        assert torch.equal(quick.faithful, full.faithful)
