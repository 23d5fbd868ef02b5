#!/usr/bin/env python3
"""frankly's PDQ against HMA's (Pillow + Meta's C++) on a whole corpus.

    python3 tests/vectors/pdq-pillow/check.py debian-corpus.json ~/.cache/frankly/corpus-full/images

(from the repository root; the reference file is relative to this folder and
comes from generate.py.) Runs `frankly hash --json --algo pdq` (the release
CLI, `cargo run --release -p frankly-cli`, or FRANKLY_BIN) over every file the
reference lists and prints, per format, how many hash identically (hash and
quality), how many differ and by how many bits at most, and which files
frankly refuses. Exits 1 if any JPEG differs: for JPEG, frankly decodes with
libjpeg-turbo exactly as Pillow does.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent


def frankly_cmd() -> list[str]:
    if os.environ.get("FRANKLY_BIN"):
        return [os.environ["FRANKLY_BIN"]]
    return shlex.split("cargo run --release --quiet -p frankly-cli --")


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ref = json.loads((HERE / sys.argv[1]).read_text())
    root = Path(sys.argv[2]).expanduser().resolve()
    rows = [r for r in ref if "file" in r]
    paths = [str(root / r["file"]) for r in rows]
    got: dict[str, dict] = {}
    for i in range(0, len(paths), 500):
        out = subprocess.run([*frankly_cmd(), "hash", "--json", "--algo", "pdq", *paths[i:i + 500]],
                             cwd=REPO, capture_output=True, text=True)
        for line in out.stdout.splitlines():
            o = json.loads(line)
            got[str(Path(o["path"]).resolve())] = o
    stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    worst: dict[str, int] = collections.defaultdict(int)
    refused = []
    differing = []
    for r, p in zip(rows, paths):
        fmt = r.get("format", "?")
        o = got.get(str(Path(p).resolve()))
        if "error" in r:
            stats[fmt]["refused by Pillow"] += 1
            continue
        if o is None or "pdq" not in o:
            stats[fmt]["refused by frankly"] += 1
            refused.append(f"{r['file']}: {o.get('error') if o else 'no output'}")
            continue
        bits = bin(int(o["pdq"], 16) ^ int(r["pdq"], 16)).count("1")
        if bits == 0 and o["quality"] == r["quality"]:
            stats[fmt]["identical"] += 1
        else:
            stats[fmt]["different"] += 1
            worst[fmt] = max(worst[fmt], bits)
            differing.append(f"{r['file']}: {bits} bits, quality {o['quality']} vs {r['quality']}")
    print(f"{'format':8s} {'files':>6s} {'identical':>9s} {'different':>9s} {'max bits':>8s} {'frankly refuses':>15s}")
    for fmt in sorted(stats):
        c = stats[fmt]
        print(f"{fmt:8s} {sum(c.values()):6d} {c['identical']:9d} {c['different']:9d} {worst[fmt]:8d} "
              f"{c['refused by frankly']:15d}")
    for line in differing:
        print("differs:", line)
    for line in refused[:20]:
        print("refused:", line)
    return 1 if stats["JPEG"]["different"] or stats["JPEG"]["refused by frankly"] else 0


if __name__ == "__main__":
    sys.exit(main())
