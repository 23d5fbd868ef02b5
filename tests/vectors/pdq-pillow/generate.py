#!/usr/bin/env python3
"""PDQ as HMA computes it: Pillow decodes, Meta's C++ hashes.

    python3 tests/vectors/pdq-pillow/generate.py ../shared/corpus shared-corpus.json
    python3 tests/vectors/pdq-pillow/generate.py ~/.cache/frankly/corpus-full/images debian-corpus.json

(from the repository root; output paths are relative to this folder.) For
every file under the directory (recursively, sorted, manifest files
skipped) it does what HMA's PDQ signal type (python-threatexchange,
`pdq_hasher.pdq_from_bytes`) does:

    np.asarray(PIL.Image.open(path).convert("RGB")) -> pdqhash.compute(...)

`pdqhash` (PyPI) wraps Meta's PDQ C++ from facebook/ThreatExchange. The
hash is written as HMA writes it: the 256 bits in pdqhash's order, first bit
most significant, as 64 hex digits. Files Pillow cannot open get
{"error": ...}. Needs a venv with the pinned versions (created at
~/.cache/frankly/pdq-pillow-venv on first run): Pillow 13.0.0 (bundled
libjpeg-turbo 3.2.0), pdqhash 0.2.8, numpy.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

VENV = Path.home() / ".cache/frankly/pdq-pillow-venv"
PINS = ["pillow==13.0.0", "pdqhash==0.2.8", "numpy"]

try:
    import numpy as np
    import pdqhash
    import PIL
    from PIL import Image, features
except ModuleNotFoundError:
    py = VENV / "bin/python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        raise
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    os.execv(str(py), [str(py), *sys.argv])

HERE = Path(__file__).resolve().parent


def pdq_hex(bits) -> str:
    value = int("".join(str(int(b)) for b in bits), 2)
    return f"{value:064x}"


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root = Path(sys.argv[1]).expanduser().resolve()
    out = HERE / sys.argv[2]
    if PIL.__version__ != "13.0.0":
        sys.exit(f"error: need Pillow 13.0.0, found {PIL.__version__}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".csv"))
    rows = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        try:
            with Image.open(p) as im:
                fmt = im.format
                rgb = np.asarray(im.convert("RGB"))
        except Exception as e:  # noqa: BLE001 - any Pillow refusal is recorded
            rows.append({"file": rel, "error": f"{type(e).__name__}: {e}"})
            continue
        bits, quality = pdqhash.compute(rgb)
        rows.append({"file": rel, "format": fmt, "pdq": pdq_hex(bits), "quality": int(quality)})
    header = {
        "header": True,
        "generator": "tests/vectors/pdq-pillow/generate.py",
        "what": "PDQ of np.asarray(PIL.Image.open(path).convert('RGB')) by pdqhash.compute (Meta's C++), as HMA",
        "root": sys.argv[1],
        "versions": {
            "python": sys.version.split()[0],
            "pillow": PIL.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"),
            "pdqhash": importlib.metadata.version("pdqhash"),
            "numpy": np.__version__,
        },
    }
    out.write_text(json.dumps([header, *rows], indent=0) + "\n")
    print(f"wrote {out}: {len(rows)} files, {sum('error' in r for r in rows)} refused by Pillow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
