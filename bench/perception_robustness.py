#!/usr/bin/env python3
"""Check `frankly eval robustness` against Thorn's `perception` benchmark.

What it does
  1. Runs `frankly eval robustness` on --corpus with --transforms, saving
     every original and transformed image as PNG (--save-images) and the
     hashes frankly computed (hashes.csv).
  2. Metric check: feeds frankly's own hashes to perception's
     `BenchmarkHashes.compute_threshold_recall` (perception/benchmarking/
     common.py). Its recall and threshold at the precision target must equal
     frankly's `recall_at_precision` and `threshold_at_precision` exactly;
     the script exits 1 otherwise.
  3. Hash comparison: hashes the same PNG files with perception's own
     hashers (PDQHash via pdqhash, PHash, DHash, AverageHash; perception has
     no blockhash) and computes the same metric, to show both sets of numbers
     side by side.

How to run (from the repo root)
  python3 bench/perception_robustness.py --corpus ../shared/corpus
      [--frankly target/release/frankly] [--transforms LIST] [--work DIR]
      [--precision 0.999] [--markdown table.md]

  The first run creates a venv at ${FRANKLY_PERCEPTION_VENV:-~/.cache/frankly/perception-venv}
  with perception, pandas and pdqhash (via bench/benchenv.py); later runs reuse it.
"""

import argparse
import base64
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault(
    "FRANKLY_BENCH_VENV",
    os.environ.get("FRANKLY_PERCEPTION_VENV") or str(Path.home() / ".cache/frankly/perception-venv"),
)
from benchenv import ensure_venv  # noqa: E402  (reads FRANKLY_BENCH_VENV at import)

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = ["perception[benchmarking]==0.9.3", "pandas", "pdqhash==0.2.8"]
PROBE = "import perception.benchmarking, pandas, pdqhash"
DEFAULT_TRANSFORMS = "jpeg:95,jpeg:50,resize:0.5,crop:0.05,pad:0.2,rotate:4,flip,blur:2,noise:0.2,gamma,watermark,gray"
BITS = {"pdq": 256, "phash": 64, "dhash": 64, "ahash": 64, "blockhash": 256}


def main() -> int:
    ensure_venv(__file__, REQUIREMENTS, PROBE)
    import pandas as pd
    from perception import hashers
    from perception.benchmarking.common import BenchmarkHashes
    from perception.benchmarking.image import BenchmarkImageTransforms
    from perception.hashers.image.pdq import PDQHash

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--frankly", default="cargo run --release -q -p frankly-cli --")
    ap.add_argument("--transforms", default=DEFAULT_TRANSFORMS)
    ap.add_argument("--precision", type=float, default=0.999)
    ap.add_argument("--work", help="working directory (default: a temporary one)")
    ap.add_argument("--markdown", help="also write the side-by-side table here")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="frankly-perception-"))
    images = work / "images"
    out = work / "frankly"
    cmd = shlex.split(args.frankly) + [
        "eval", "robustness", "--corpus", args.corpus, "--transforms", args.transforms,
        "--precision", str(args.precision), "--out", str(out), "--save-images", str(images), "--no-plots",
    ]
    print("running:", " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)

    summary = pd.read_csv(out / "robustness.csv")
    transforms = list(dict.fromkeys(summary["transform"]))
    frankly_hashes = pd.read_csv(out / "hashes.csv")

    # 2. perception's metric on frankly's hashes.
    def b64(hexstr: str) -> str:
        return base64.b64encode(bytes.fromhex(hexstr)).decode()

    rows = pd.DataFrame({
        "guid": frankly_hashes["image"],
        "transform_name": frankly_hashes["transform"],
        "hasher_name": frankly_hashes["algorithm"],
        "category": "corpus",
        "hash": frankly_hashes["hash"].map(b64),
        "hasher_dtype": "bool",
        "hasher_distance_metric": "hamming",
        "hasher_hash_length": frankly_hashes["algorithm"].map(BITS),
        "filepath": frankly_hashes["image"] + "@" + frankly_hashes["transform"],
        "input_filepath": frankly_hashes["image"],
        "error": None,
    })
    on_frankly = BenchmarkHashes(rows).compute_threshold_recall(precision_threshold=100 * args.precision).reset_index()

    # 3. perception's hashers on the same PNG files.
    def flat(name: str) -> str:
        return name.replace("/", "_").replace(":", "_").replace("\\", "_")

    records = []
    for name in frankly_hashes["image"].unique():
        for t in ["noop"] + transforms:
            path = images / t.replace(":", "_") / f"{flat(name)}.png"
            if path.exists():
                records.append({"guid": name, "transform_name": t, "filepath": str(path),
                                "input_filepath": str(path), "category": "corpus"})
    bench = BenchmarkImageTransforms(pd.DataFrame.from_records(records))
    perception_hashers = {
        "pdq": PDQHash(),
        "phash": hashers.PHash(hash_size=8),
        "dhash": hashers.DHash(hash_size=8),
        "ahash": hashers.AverageHash(hash_size=8),
    }
    theirs = bench.compute_hashes(perception_hashers, max_workers=args.workers)
    on_perception = theirs.compute_threshold_recall(precision_threshold=100 * args.precision).reset_index()

    def lookup(df, algo, t):
        hit = df[(df["hasher_name"] == algo) & (df["transform_name"] == t)]
        return None if hit.empty else hit.iloc[0]

    mismatches = 0
    lines = [
        f"| transform | algorithm | frankly recall | threshold (bits) | perception's metric on frankly's hashes | perception's hashes: recall | threshold (bits) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for t in transforms:
        for algo in summary["algorithm"].unique():
            mine = summary[(summary["algorithm"] == algo) & (summary["transform"] == t)].iloc[0]
            check = lookup(on_frankly, algo, t)
            other = lookup(on_perception, algo, t)
            bits = BITS[algo]
            ours_recall = 100 * float(mine["recall_at_precision"])
            check_recall = float(check["recall"])
            check_threshold = round(float(check["threshold"]) * bits)
            same = abs(ours_recall - check_recall) < 1e-6 and check_threshold == int(mine["threshold_at_precision"])
            if not same:
                mismatches += 1
                print(f"MISMATCH {algo} {t}: frankly {ours_recall} @ {mine['threshold_at_precision']}, "
                      f"perception metric {check_recall} @ {check_threshold}", file=sys.stderr)
            other_cells = ("–", "–") if other is None else (
                f"{float(other['recall']):.2f}%", str(round(float(other["threshold"]) * bits)))
            lines.append(
                f"| {t} | {algo} | {ours_recall:.2f}% | {int(mine['threshold_at_precision'])} | "
                f"{check_recall:.2f}% @ {check_threshold}{'' if same else ' (differs)'} | {other_cells[0]} | {other_cells[1]} |"
            )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    n_images = frankly_hashes["image"].nunique()
    print(f"\n{n_images} images, {len(transforms)} transforms, precision target {100 * args.precision}%; "
          f"metric mismatches: {mismatches}; work dir {work}", file=sys.stderr)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
