#!/usr/bin/env python3
"""Fetch NudeNet 3.4.2's detector (AGPL-3.0) into models/nudenet/ for users who supply it themselves.

frankly does not ship NudeNet: its licence is AGPL-3.0. models/nudenet.toml
describes it, so that after

    python3 models/fetch_nudenet.py

`frankly classify --model nudenet IMAGE...` runs it (and the detector test,
`cargo test -p frankly-classify --test nudenet -- --ignored`, checks it
against onnxruntime). Only do this if the AGPL-3.0 terms suit your use.

Stdlib only. It runs `python3 -m pip download --no-deps nudenet==3.4.2`,
checks the wheel's and the model's SHA-256, and writes

    nudenet/320n.onnx                 -> models/nudenet/320n.onnx
    nudenet-3.4.2.dist-info/LICENSE   -> models/nudenet/LICENSE

models/nudenet/ is ignored by git. Options: --dest DIR, --wheel PATH.
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

PACKAGE, VERSION = "nudenet", "3.4.2"
WHEEL = "nudenet-3.4.2-py3-none-any.whl"
WHEEL_SHA256 = "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331"
MODEL_MEMBER = "nudenet/320n.onnx"
MODEL_SHA256 = "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"
LICENSE_MEMBER = "nudenet-3.4.2.dist-info/LICENSE"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=here / "nudenet")
    ap.add_argument("--wheel", type=Path, default=None)
    args = ap.parse_args()
    print("NudeNet is AGPL-3.0 and not part of frankly; fetching it for your own use.", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="fetch_nudenet.") as t:
        wheel = args.wheel
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--dest", t, f"{PACKAGE}=={VERSION}"]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            wheel = Path(t) / WHEEL
        digest = sha256(wheel.read_bytes())
        if digest != WHEEL_SHA256:
            print(f"error: wheel sha256 {digest}, expected {WHEEL_SHA256}", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheel) as zf:
            model = zf.read(MODEL_MEMBER)
            licence = zf.read(LICENSE_MEMBER)
    if sha256(model) != MODEL_SHA256:
        print(f"error: model sha256 {sha256(model)}, expected {MODEL_SHA256}", file=sys.stderr)
        return 1
    args.dest.mkdir(parents=True, exist_ok=True)
    for name, data in (("320n.onnx", model), ("LICENSE", licence)):
        out = args.dest / name
        part = out.with_name(out.name + ".part")
        part.write_bytes(data)
        os.replace(part, out)
        print(f"wrote {out} ({len(data)} bytes) sha256={sha256(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
