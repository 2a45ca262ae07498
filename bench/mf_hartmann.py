"""MF-Hartmann 3-D and 6-D, the multi-fidelity Hartmann functions of mf-prior-bench (automl/mf-prior-bench,
`mfpbench/synthetic/hartmann`), as pure numpy functions of (x, z).

The published definition: x in [0, 1]^d, fidelity z in [1, 100] (the benchmark queries 3 to 100), s = log z / log
100. The value, to be minimised, is

    H(x, z) = -sum_i (alpha_i - bias * (1 - s)) * exp(-sum_j A_ij (x_j - P_ij)^2)  +  |N(0, 1)| * noise * (1 - s)

with the standard Hartmann alpha, A and P, and the normal draw seeded by abs(seed * z * hash(x)) (seed 1337 when
none is given), so a config queried twice at one fidelity gets the same value. At z = 100 both the bias and the
noise vanish and H is the plain Hartmann function (minimum -3.86278 in 3-D, -3.32237 in 6-D). The presets
(bias, noise) that mf-prior-bench names after their fidelity correlation are good (2.5, 2.0), moderate (3.0, 3.0),
bad (3.5, 4.0) and terrible (4.0, 5.0); the cost of a query is 0.05 + 0.95 (z / 100)^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_MIN, Z_MAX = 1, 100  # the generator's fidelity range; the benchmark queries z >= 3
DEFAULT_SEED = 1337
PRESETS: dict[str, tuple[float, float]] = {  # name -> (bias, noise)
    "good": (2.5, 2.0),
    "moderate": (3.0, 3.0),
    "bad": (3.5, 4.0),
    "terrible": (4.0, 5.0),
}
ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
A = {
    3: np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]),
    6: np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                 [17, 8, 0.05, 10, 0.1, 14]]),
}
P = {
    3: 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]),
    6: 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]),
}
OPTIMUM = {3: (0.114614, 0.555649, 0.852547), 6: (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)}
MINIMUM = {3: -3.86278, 6: -3.32237}  # the plain Hartmann functions' global minima


def scaled_fidelity(z: float) -> float:
    """s = log z / log z_max: 0 at the lowest fidelity, 1 at the highest."""
    return (math.log(z) - math.log(Z_MIN)) / (math.log(Z_MAX) - math.log(Z_MIN))


def mf_hartmann(x: Sequence[float], z: int, *, bias: float, noise: float, seed: int | None = None) -> float:
    """H(x, z) as mf-prior-bench defines it (to be minimised), noise included; d = len(x) is 3 or 6."""
    xs = tuple(float(v) for v in x)
    s = scaled_fidelity(z)
    value = _biased(np.array(xs), bias * (1 - s))
    # hash() of a tuple of floats does not depend on PYTHONHASHSEED, so the draw repeats across processes.
    rng = np.random.default_rng(seed=abs((seed or DEFAULT_SEED) * int(z) * hash(xs)))
    return float(value + abs(rng.normal(size=1)[0]) * noise * (1 - s))


def hartmann(x: Sequence[float]) -> float:
    """The plain Hartmann function (z = z_max: no bias, no noise), to be minimised."""
    return float(_biased(np.array([float(v) for v in x]), 0.0))


def _biased(x: np.ndarray, flattening: float) -> float:
    d = len(x)
    inner = np.sum(A[d] * (x[np.newaxis, :] - P[d]) ** 2, axis=-1)
    return float(-np.sum((ALPHA - flattening) * np.exp(-inner)))


def query_cost(z: float) -> float:
    """mf-prior-bench's cost of one query at z: 0.05 + 0.95 (z / z_max)^2."""
    return 0.05 + 0.95 * (z / Z_MAX) ** 2
