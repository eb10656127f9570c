"""Parameter checks and threshold arithmetic shared by the itemset and rule miners.

Thresholds arrive as decimal-looking floats (``min_support=0.001``, ``min_confidence=0.8``)
but what we compare are integer counts. ``0.001 * 9835`` and ``0.8 * 15`` are not exact in
binary floating point, so every comparison here allows a relative slack of ``REL_TOL``:
a ratio that equals the threshold in decimal passes, as it does in R's arules and mlxtend.
The slack is far below the gap between two distinct count ratios for any realistic
number of baskets (ratios of counts below 10**7 differ by more than 1e-14 relative), so it
never lets through a rule that is genuinely below the threshold.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see crm_core.mining.records)

if TYPE_CHECKING:
    from numbers import Integral, Real
    from typing import TypeGuard

    import numpy as np

REL_TOL = 1e-9


def _is_int(value: object) -> TypeGuard[Integral]:
    # The common cases without importing numbers (chatcrm mine's start-up).
    if type(value) is int or type(value) is float:
        return type(value) is int
    from numbers import Integral

    # bool is an Integral, but min_support=True is a mistake, not a count of one.
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: object) -> TypeGuard[Real]:
    if type(value) is float or type(value) is int:
        return True
    from numbers import Real

    return isinstance(value, Real) and not isinstance(value, bool)


def check_min_support(value: object) -> None:
    """Raise unless ``value`` is an int >= 1 (a count) or a float in (0, 1] (a fraction)."""
    if _is_int(value):
        if value < 1:
            raise ValueError(f"min_support as an integer is a basket count and must be >= 1; got {value!r}")
        return
    if not _is_real(value):
        raise TypeError(
            f"min_support must be a float in (0, 1] (fraction of baskets) or an int >= 1 "
            f"(number of baskets); got {type(value).__name__} {value!r}"
        )
    if not (0.0 < float(value) <= 1.0):  # also rejects NaN
        raise ValueError(
            f"min_support as a float is a fraction of baskets and must be in (0, 1]; got {value!r} "
            f"(pass an int for an absolute basket count)"
        )


def check_unit_interval(name: str, value: object) -> None:
    """Raise unless ``value`` is a real number in [0, 1] (used for min_confidence)."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number in [0, 1]; got {type(value).__name__} {value!r}")
    if not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be in [0, 1]; got {value!r}")


def check_min_lift(value: object) -> None:
    """Raise unless ``value`` is None or a finite real number >= 0."""
    if value is None:
        return
    if not _is_real(value):
        raise TypeError(f"min_lift must be None or a number >= 0; got {type(value).__name__} {value!r}")
    if not (0.0 <= float(value) < math.inf):
        raise ValueError(f"min_lift must be a finite number >= 0; got {value!r}")


def check_max_len(value: object) -> None:
    """Raise unless ``value`` is None (no limit) or an int >= 1."""
    if value is None:
        return
    if not _is_int(value):
        raise TypeError(f"max_len must be None or an int >= 1; got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"max_len must be >= 1 (or None for no limit); got {value!r}")


def min_count(min_support: float | int, n_baskets: int) -> int:
    """The smallest basket count that meets ``min_support`` (already checked) over ``n_baskets``.

    An int is already a count. A fraction becomes ``ceil(min_support * n_baskets)``, computed
    with the relative slack so that 0.001 * 100000 (= 100.00000000000001 in floating point)
    gives 100, while 0.001 * 9835 = 9.835 gives 10 as in arules.
    """
    if _is_int(min_support):
        return int(min_support)
    exact = float(min_support) * n_baskets
    return max(1, math.ceil(exact * (1.0 - REL_TOL)))


def ratio_at_least(numerator: np.ndarray, denominator: np.ndarray, threshold: float) -> np.ndarray:
    """Element-wise ``numerator / denominator >= threshold`` without dividing, with the slack.

    Counts stay exact as float64 up to 2**53, far beyond any basket count.
    """
    # Imported here: the checks above serve the numpy-free path of `chatcrm mine` (crm_core.mining.lean).
    import numpy as np

    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return numerator >= denominator * (float(threshold) * (1.0 - REL_TOL))
