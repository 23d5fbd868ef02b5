#!/usr/bin/env python3
"""Benchmark frankly's Rust PDQ against Meta's C++ PDQ on identical pixels.

What it measures
  One photo is decoded with Pillow, converted to RGB and resized (Lanczos) to
  each size in --sizes. Each size is written as raw interleaved RGB8
  (`WxH.rgb`) and hashed by both implementations in the same run:

  * reference: `pdqhash.compute` from PyPI `pdqhash==0.2.8`, which compiles
    Meta's ThreatExchange C++ PDQ with Cython. The binding first computes luma
    in numpy, then calls C++. We report its total time (`ref_total`), the
    numpy luma expression timed on its own (`ref_numpy_luma`) and their
    difference (`ref_core`, roughly the C++ part).
  * frankly: `cargo run --release -p frankly-hash --example pdq_bench`, which
    times its own hashing and prints one JSON line per file.

  Both sides are measured in --rounds alternating rounds of --reps timed runs
  each (after 2 warm-ups), and each reported time is the median over all the
  samples of all rounds, so that a slow spell of a shared machine hits both
  sides alike rather than one. Timings are single-threaded: OMP_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1 are set for
  numpy, and the Rust example is single-threaded. The script exits 1 if any
  hash or quality differs between the two.

How to run (from the repo root)
  python3 bench/pdq_vs_reference.py [--image PATH] [--sizes 512x512,...]
      [--reps 7] [--rounds 5] [--json results.json] [--rust-cmd 'PREFIX']

  The first run creates a venv at ${FRANKLY_BENCH_VENV:-~/.cache/frankly/bench-venv}
  and builds pdqhash there (a C++ compiler is needed); later runs reuse it.
  --rust-cmd replaces `cargo run ... --example pdq_bench --`; `--reps N` and
  the .rgb files are appended to it (e.g. --rust-cmd target/release/examples/pdq_bench).
"""

import argparse
import importlib.metadata
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchenv import cpu_model, ensure_venv

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REQUIREMENTS = ["pdqhash==0.2.8", "numpy", "pillow"]
RUST_CMD = "cargo run --release --quiet -p frankly-hash --example pdq_bench --"
WARMUPS = 2
SELF_CHECK = REPO / "tests/vectors/pdq/te_bridge-mods_aaa-orig.png"




def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, help="source photo (default: first tests/data/photos/*.jpg)")
    ap.add_argument("--sizes", default="512x512,1024x768,4000x3000", help="comma-separated WxH list")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per size and round (default 7)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of both sides (default 5)")
    ap.add_argument("--rust-cmd", default=RUST_CMD, help="shell-quoted command prefix for the Rust side")
    ap.add_argument("--json", type=Path, help="also write machine-readable results here")
    args = ap.parse_args()
    args.sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",") if s]
    if args.image is None:
        photos = sorted((REPO / "tests/data/photos").glob("*.jpg"))
        args.image = photos[0] if photos else SHARED / "corpus/lomiri_Bridge_by_Sander_Klootwijk.jpg"
    return args




def samples_ns(fn, reps: int) -> list[int]:
    for _ in range(WARMUPS):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return times


def bits_to_hex(bits) -> str:
    """pdqhash's bit vector, element 0 = most significant bit -> 64 hex chars."""
    return "%064x" % int("".join(str(int(b)) for b in bits), 2)


def self_check(pdqhash, np, Image) -> None:
    if not SELF_CHECK.exists():
        return
    vectors = json.loads((SELF_CHECK.parent / "vectors.json").read_text())
    expected = next(v["pdq"] for v in vectors if v["file"] == SELF_CHECK.name)
    bits, _ = pdqhash.compute(np.asarray(Image.open(SELF_CHECK).convert("RGB")))
    got = bits_to_hex(bits)
    assert got == expected, f"self-check failed on {SELF_CHECK.name}: {got} != {expected}"


def reference(np, pdqhash, path: Path, w: int, h: int, reps: int) -> dict:
    """One round of the reference on one size: its output and raw samples."""
    arr = np.fromfile(path, dtype=np.uint8).reshape(h, w, 3)
    bits, quality = pdqhash.compute(arr)
    total = samples_ns(lambda: pdqhash.compute(arr), reps)
    luma = samples_ns(
        lambda: (arr[:, :, 0] * 0.299 + arr[:, :, 1] * 0.587 + arr[:, :, 2] * 0.114).astype("float32"),
        reps,
    )
    return {"pdq": bits_to_hex(bits), "quality": int(quality), "total": total, "luma": luma}


def run_rust(cmd: str, files: list[Path], reps: int) -> dict[str, dict]:
    argv = shlex.split(cmd) + ["--reps", str(reps)] + [str(f) for f in files]
    print(f"frankly: {shlex.join(argv)}", file=sys.stderr, flush=True)
    out = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"rust command failed with exit code {out.returncode}")
    results = {}
    for line in out.stdout.splitlines():
        if line.lstrip().startswith("{"):
            rec = json.loads(line)
            results[Path(rec["file"]).name] = rec
    return results


def main() -> int:
    args = parse_args()
    import numpy as np
    import pdqhash
    from PIL import Image

    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "pdqhash": importlib.metadata.version("pdqhash")}
    print(f"cpu: {cpu_model()}")
    print("  ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"image: {args.image}  rounds: {args.rounds} x reps: {args.reps} (+{WARMUPS} warm-ups each)"
          "  single-threaded\n")
    self_check(pdqhash, np, Image)

    src = Image.open(args.image).convert("RGB")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pdq-bench-") as tmp:
        files = []
        for w, h in args.sizes:
            path = Path(tmp) / f"{w}x{h}.rgb"
            path.write_bytes(src.resize((w, h), Image.Resampling.LANCZOS).tobytes())
            files.append(path)
        refs = [{"total": [], "luma": []} for _ in files]
        rust = {path.name: {"samples_ns": []} for path in files}
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}/{args.rounds}: reference ...", file=sys.stderr, flush=True)
            for (w, h), path, acc in zip(args.sizes, files, refs):
                one = reference(np, pdqhash, path, w, h, args.reps)
                acc.update(pdq=one["pdq"], quality=one["quality"])
                acc["total"] += one["total"]
                acc["luma"] += one["luma"]
            for name, rec in run_rust(args.rust_cmd, files, args.reps).items():
                samples = rust[name]["samples_ns"] + rec.get("samples_ns", [rec["median_ns"]])
                rust[name] = {**rec, "samples_ns": samples}

    for (w, h), path, ref in zip(args.sizes, files, refs):
        fr = rust.get(path.name, {})
        fr_ns = int(statistics.median(fr["samples_ns"])) if fr.get("samples_ns") else None
        total_ns = int(statistics.median(ref["total"]))
        luma_ns = int(statistics.median(ref["luma"]))
        rows.append({
            "size": f"{w}x{h}", "width": w, "height": h, "samples": len(ref["total"]),
            "frankly_ns": fr_ns, "ref_total_ns": total_ns,
            "ref_numpy_luma_ns": luma_ns, "ref_core_ns": total_ns - luma_ns,
            "ratio_core": (total_ns - luma_ns) / fr_ns if fr_ns else None,
            "ratio_total": total_ns / fr_ns if fr_ns else None,
            "pdq_frankly": fr.get("pdq"), "pdq_ref": ref["pdq"],
            "quality_frankly": fr.get("quality"), "quality_ref": ref["quality"],
            "identical": fr.get("pdq") == ref["pdq"] and fr.get("quality") == ref["quality"],
        })

    def ms(ns):
        return "-" if ns is None else f"{ns / 1e6:.2f}"

    def ratio(r):
        return "-" if r is None else f"{r:.1f}x"

    header = ["size", "frankly ms", "C++ core ms", "C++ total ms", "core/frankly",
              "total/frankly", "identical", "quality fr/C++"]
    table = [header] + [[
        r["size"], ms(r["frankly_ns"]), ms(r["ref_core_ns"]), ms(r["ref_total_ns"]),
        ratio(r["ratio_core"]), ratio(r["ratio_total"]), "yes" if r["identical"] else "NO",
        f"{r['quality_frankly']}/{r['quality_ref']}",
    ] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.rjust(wd) if j else c.ljust(wd) for j, (c, wd) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * wd for wd in widths))
    for r in rows:
        if not r["identical"]:
            print(f"MISMATCH {r['size']}: frankly {r['pdq_frankly']} q={r['quality_frankly']}"
                  f"  C++ {r['pdq_ref']} q={r['quality_ref']}", file=sys.stderr)

    if args.json:
        report = {"cpu": cpu_model(), **versions, "image": str(args.image),
                  "rounds": args.rounds, "reps": args.reps, "warmups": WARMUPS, "results": rows}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    probe = "import importlib.metadata as m, numpy, PIL, pdqhash; assert m.version('pdqhash') == '0.2.8'"
    ensure_venv(__file__, REQUIREMENTS, probe, build_deps=["numpy", "cython", "setuptools", "wheel"])
    sys.exit(main())
