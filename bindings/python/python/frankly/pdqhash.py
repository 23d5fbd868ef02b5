"""Drop-in for the ``pdqhash`` package (PyPI ``pdqhash`` 0.2.8, Meta's C++).

Change ``import pdqhash`` to ``from frankly import pdqhash`` and nothing
else: the functions take the same ``(height, width, 3)`` uint8 numpy array
and return the same types, with the same values (frankly's PDQ is bit-exact
with Meta's reference; the tests compare them on every shared photo).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from . import _native

__all__ = ["compute", "compute_dihedral", "compute_float"]


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 array of shape (height, width, 3), got {image.dtype} {image.shape}")
    return image


def compute(image: np.ndarray) -> Tuple[np.ndarray, int]:
    """``(hash_vector, quality)``: 256 integers 0 or 1, most significant bit
    first, as ``pdqhash.compute`` returns them."""
    return _native.pdqhash_compute(_check(image))


def compute_dihedral(image: np.ndarray) -> Tuple[List[np.ndarray], int]:
    """``([eight hash vectors], quality)``: original, rotated 90, 180, 270,
    flipped X, Y, plus-one and minus-one diagonals, as ``pdqhash`` orders them."""
    return _native.pdqhash_compute_dihedral(_check(image))


def compute_float(image: np.ndarray) -> Tuple[np.ndarray, int]:
    """``(coefficients, quality)``: the 256 DCT coefficients before
    thresholding, in ``pdqhash``'s order (flattened, then reversed)."""
    return _native.pdqhash_compute_float(_check(image))
