"""What a run's pretext model does on its held-out images, image by image: the data behind the
result pages (rotation probabilities, colorizations at a temperature, solved jigsaw puzzles).

The headline figures of those pages come from ``sslviz.training.evaluate.evaluate_run`` (what ``sslviz
eval`` prints); this package adds the per-image detail, computed on exactly the held-out images
evaluation used (same cache, same split, same puzzles).
"""

from sslviz.results.heldout import HeldOut, held_out

__all__ = ["HeldOut", "held_out"]
