"""What a run's network does, image by image: the data behind the result pages, the live demo and
the data checks a pretext model gives.

heldout          a run's held-out images, as evaluation sees them (same cache, split, puzzles)
rotation_answers, jigsaw_answers, colorization_answers
                 each task's answers image by image: turned copies, puzzles, colours
stored           those results computed once per checkpoint, read back by the pages
at_run_end       what a pretext run computes when it ends (the kinds table's results writer)
image_scores     per-image pretext scores over a whole dataset: the model as a data check
checks_job       the job of kind ``checks``: a map's kNN graph (``sslviz.maps.neighbour_checks``) and scores
upright          images a rotation model is sure are stored turned
features         what each channel responds to: its dataset examples, cached per checkpoint;
                 the encoder of a run or of ``random`` to look into (``feature_source``)
receptive_field  where a feature-map unit looks, in the input and in the stored image
saliency         Grad-CAM: where the model looked
heatmap          heat maps and outlined boxes as uint8 pictures
apply            a run's pretext model on one image (the live demo, ``sslviz apply``)
picture          the one PNG ``sslviz apply --out`` writes

The headline figures come from ``sslviz.training.evaluate.evaluate_run`` (``sslviz eval``).
"""

from sslviz.results.heldout import HeldOut, held_out

__all__ = ["HeldOut", "held_out"]
