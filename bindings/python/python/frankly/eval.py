"""frankly's research studies (``frankly eval``) from Python.

Each returns its table as a list of dicts, one per row, or a pandas
DataFrame with ``as_frame=True`` (pandas must then be installed). Images
that failed to decode are reported with ``warnings.warn``.
"""

from __future__ import annotations

import json
import os
import warnings

from . import _native

__all__ = ["fpr", "privacy", "robustness"]


def _table(rows, as_frame: bool):
    if not as_frame:
        return rows
    try:
        import pandas
    except ImportError:
        raise ValueError("as_frame=True needs pandas installed") from None
    return pandas.DataFrame(rows)


def _warn(failures):
    for name, reason in failures:
        warnings.warn(f"{name}: {reason}", stacklevel=3)


def robustness(corpus, transforms=None, algorithms="pdq,phash,dhash,ahash,blockhash", seed=0,
               precision=0.999, fpr=1e-3, as_frame=False):
    """Robustness of each hash to each transform over an image corpus
    (``transforms`` as ``frankly eval robustness --transforms`` takes them,
    for example ``"jpeg:50,crop:0.2,flip"``): one row per algorithm and
    transform with recall at the precision target (Thorn's ``perception``
    definition) and at the false-positive-rate target, the thresholds, AUC."""
    out = json.loads(_native.eval_robustness_json(os.fspath(corpus), transforms, algorithms, seed, precision, fpr))
    _warn(out["failures"])
    return _table(out["rows"], as_frame)


def fpr(corpus, algorithms="pdq,phash,dhash,ahash,blockhash", bank_size=1_000_000, images_per_account=10_000,
        target=1e-12, keep_duplicates=False, as_frame=False):
    """False matches between distinct images of a corpus: one row per
    algorithm and threshold (false matches, pairs, per million)."""
    out = json.loads(_native.eval_fpr_json(os.fspath(corpus), algorithms, bank_size, images_per_account, target,
                                           keep_duplicates))
    _warn(out["failures"])
    return _table(out["rows"], as_frame)


def privacy(text="see you at 5", jpeg=None, as_frame=False):
    """What each party learns when one real message (``text`` and a JPEG's
    bytes) is franked, sent and reported, measured field by field."""
    if jpeg is None:
        raise ValueError("privacy needs the bytes of a JPEG attachment")
    if isinstance(jpeg, (str, os.PathLike)):
        with open(jpeg, "rb") as f:
            jpeg = f.read()
    return _table(json.loads(_native.eval_privacy_json(text, bytes(jpeg))), as_frame)
