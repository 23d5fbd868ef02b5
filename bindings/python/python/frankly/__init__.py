"""frankly: safety for end-to-end encrypted messengers, from Python.

Hashing (PDQ bit-exact with Meta's reference, the classic perceptual hashes,
digests), exact hash-bank matching and the on-device scanner, thin over
frankly's Rust libraries. Library errors raise ``ValueError`` with the
library's message.

>>> import frankly
>>> hash_hex, quality = frankly.pdq("photo.jpg")          # doctest: +SKIP
>>> frankly.Bank([hash_hex]).query(hash_hex)               # doctest: +SKIP
[{'index': 0, 'hash': '...', 'distance': 0, 'labels': []}]
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import Bank

__all__ = [
    "Bank",
    "Scanner",
    "ahash",
    "blockhash",
    "dhash",
    "md5",
    "open_and_verify",
    "pdq",
    "pdq_dihedral",
    "phash",
    "sha256",
    "vpdq",
]

Image = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray, Any]


def _read(path: Union[str, "os.PathLike[str]"], limit: int = _native.MAX_FILE_BYTES) -> bytes:
    """Reads a file, refusing one larger than frankly decodes."""
    size = os.path.getsize(path)
    if size > limit:
        raise ValueError(f"{os.fspath(path)}: {size} bytes exceeds the limit of {limit}")
    with open(path, "rb") as f:
        return f.read()


def _image(image: Image) -> Tuple[str, Any]:
    """("bytes", file bytes) or ("array", HxWx3 uint8 array) for any accepted input."""
    if isinstance(image, (str, os.PathLike)):
        return "bytes", _read(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return "bytes", bytes(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array, got dtype {image.dtype}")
        if image.ndim != 3:
            raise ValueError(f"expected an array of shape (height, width, 3), got shape {image.shape}")
        return "array", image
    convert = getattr(image, "convert", None)
    if callable(convert):  # a PIL image, converted as HMA does
        return "array", np.asarray(convert("RGB"))
    raise ValueError(f"expected a path, bytes, a uint8 numpy array or a PIL image, got {type(image).__name__}")


def pdq(image: Image) -> Tuple[str, int]:
    """PDQ ``(hash_hex, quality)``: a path or file bytes (decoded as Pillow
    decodes them), an ``(height, width, 3)`` uint8 array, or a PIL image."""
    kind, value = _image(image)
    return _native.pdq_bytes(value) if kind == "bytes" else _native.pdq_array(value)


def pdq_dihedral(image: Image) -> Tuple[list, int]:
    """The eight dihedral PDQ hashes (original; rotated 90, 180, 270 degrees;
    flipped about X, Y, the main and the anti diagonal) and the quality."""
    kind, value = _image(image)
    return _native.pdq_dihedral_bytes(value) if kind == "bytes" else _native.pdq_dihedral_array(value)


def _perceptual(algorithm: str, image: Image) -> str:
    kind, value = _image(image)
    if kind == "bytes":
        return _native.perceptual_bytes(algorithm, value)
    return _native.perceptual_array(algorithm, value)


def phash(image: Image) -> str:
    """pHash (64 bits, hex) with frankly's fixed parameters (docs/hashes.md)."""
    return _perceptual("phash", image)


def dhash(image: Image) -> str:
    """dHash (64 bits, hex)."""
    return _perceptual("dhash", image)


def ahash(image: Image) -> str:
    """aHash (64 bits, hex)."""
    return _perceptual("ahash", image)


def blockhash(image: Image) -> str:
    """Blockhash with 16x16 blocks (256 bits, hex)."""
    return _perceptual("blockhash", image)


def vpdq(video, seconds_per_hash: float = 0.0, frame_rate_timestamps: bool = False) -> list:
    """vPDQ of a video (a path or bytes), identical to Meta's: a list of
    ``(frame_number, hash_hex, quality, timestamp)``, one per hashed frame
    (every frame, or one every ``seconds_per_hash`` seconds). Timestamps are
    presentation times, or with ``frame_rate_timestamps`` Meta's frame number
    divided by the frame rate (the column of Meta's published hashes)."""
    if isinstance(video, (str, os.PathLike)):
        data = _read(video, _native.MAX_VIDEO_BYTES)
    elif isinstance(video, (bytes, bytearray, memoryview)):
        data = bytes(video)
    else:
        raise ValueError(f"expected a path or bytes, got {type(video).__name__}")
    return _native.vpdq_bytes(data, seconds_per_hash, frame_rate_timestamps)


def _data(data: Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]) -> bytes:
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            return f.read()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise ValueError(f"expected a path or bytes, got {type(data).__name__}")


def sha256(data: Union[str, "os.PathLike[str]", bytes]) -> str:
    """SHA-256 of a file or bytes, hex."""
    return _native.sha256(_data(data))


def md5(data: Union[str, "os.PathLike[str]", bytes]) -> str:
    """MD5 of a file or bytes, hex (only to look up lists published as MD5)."""
    return _native.md5(_data(data))


def _field(item, names, what):
    if isinstance(item, dict):
        for name in names:
            if name in item:
                return item[name]
        raise ValueError(f"{what} has no {names[0]!r}")
    raise ValueError(f"{what} must be a dict")


def open_and_verify(envelope: bytes, report_keys, platform_keys, reporter, now_ms=None) -> dict:
    """Opens a sealed report (the moderation side) and verifies every message.

    ``report_keys``: dicts ``{"id", "seed" (or "ikm"), "open_until_ms"}``, the
    server's HPKE report keys as the 32-byte seeds (hex) they derive from;
    ``platform_keys``: dicts ``{"id", "secret", "tag_from_ms", "tag_until_ms",
    "verify_until_ms"}``; ``reporter``: the authenticated submitter,
    ``{"user_id", "device_id"}`` or a pair; ``now_ms``: the time of checking
    (default: now). Returns ``{"report", "verdicts", "order",
    "report_key_id"}``, one verdict per message (``verified``, ``unopened``,
    or ``rejected`` with its reason). A refused report raises ``ValueError``
    with the reason. Report ids are not remembered between calls: dedupe on
    ``report["report_id"]``."""
    server = [
        (int(_field(k, ["id"], "report key")), str(_field(k, ["seed", "ikm"], "report key")),
         int(_field(k, ["open_until_ms"], "report key")))
        for k in report_keys
    ]
    platform = [
        tuple([int(_field(k, ["id"], "platform key")), str(_field(k, ["secret"], "platform key"))]
              + [int(_field(k, [f], "platform key")) for f in ("tag_from_ms", "tag_until_ms", "verify_until_ms")])
        for k in platform_keys
    ]
    if isinstance(reporter, dict):
        reporter = (reporter.get("user_id"), reporter.get("device_id"))
    if not (isinstance(reporter, (tuple, list)) and len(reporter) == 2 and all(isinstance(x, str) for x in reporter)):
        raise ValueError("reporter must be {'user_id': str, 'device_id': str} or a (user_id, device_id) pair")
    return json.loads(_native.open_and_verify_json(bytes(envelope), server, platform, tuple(reporter), now_ms))


class Scanner:
    """The on-device scanner: ``Scanner(policy_toml, audience=None, banks=[],
    models_dir=None, settings={})``; ``scan(...)`` returns the verdict as a
    dict (decision, signals, skipped models, timings), as ``frankly scan
    --json`` prints it."""

    def __init__(self, policy: str, audience=None, banks=(), models_dir=None, settings=None):
        if isinstance(policy, os.PathLike) or (isinstance(policy, str) and "\n" not in policy and os.path.isfile(policy)):
            with open(policy, encoding="utf-8") as f:
                policy = f.read()
        models = None if models_dir is None else os.fspath(models_dir)
        self._scanner = _native.Scanner(policy, audience, list(banks), models, dict(settings or {}))

    def scan(self, text: str = "", attachments=(), direction: str = "incoming", contact=None, first_message=None) -> dict:
        """Scans a message: its text and ``(bytes, media_type)`` attachments
        (a path is read), ``direction`` ``"incoming"`` or ``"outgoing"``."""
        files = []
        for item in attachments:
            if not isinstance(item, tuple) or len(item) != 2:
                raise ValueError("each attachment is a (bytes or path, media_type) pair")
            data, media_type = item
            files.append((_data(data), str(media_type)))
        return json.loads(self._scanner.scan_json(text, files, direction, contact, first_message))
