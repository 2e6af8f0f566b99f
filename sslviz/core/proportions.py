"""Intervals for a proportion: how far a measured accuracy can be from the true one.

Shared by every accuracy sslviz reports (held-out pretext metrics, few-shot cross-validation),
so an interval on one page means the same as on another.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(correct: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / n`` (Wilson 1927).

    Chosen over the normal ("Wald") interval because it stays inside [0, 1] and is still right
    at 0% or 100% with few trials — exactly where a weak run or a small held-out set sits.
    ``correct`` may be fractional (an accuracy times ``n``).
    """
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if correct <= 0 else max(0.0, centre - half)
    high = 1.0 if correct >= n else min(1.0, centre + half)  # exact ends, not 0.9999999999999999
    return (low, high)
