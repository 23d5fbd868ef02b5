#!/usr/bin/env python3
"""Benchmark frankly's exact Hamming range index against FAISS on PDQ-sized data.

What it measures
  For each dataset in --data (`uniform`: every bit random; `clustered`: n/10
  random centres with 10 variants each, 0 to 24 bits flipped), the Rust example
  `frankly-bank/examples/bank_bench` generates --n 256-bit hashes and --queries
  queries deterministically from --seed (half are entries with 0 to 31 bits
  flipped, half are random), builds frankly's index, times every query as a
  single range query (radius --radius, inclusive) and brute force (frankly's own
  popcount scan) on the first --brute-queries queries. It writes the hashes,
  the queries and its results, which this script then runs through FAISS:

  * `IndexBinaryMultiHash(256, 16, 16)` with `nflip = 1`, as ThreatExchange/HMA
    configure it for PDQ: all queries, one `range_search` call per query
    (batch of 1, to measure per-query latency).
  * `IndexBinaryFlat(256)`: a full scan per query, so only the first
    --flat-queries queries.

  FAISS's binary range_search keeps distances strictly below its radius, so it
  is called with radius + 1. Every FAISS result set is compared with frankly's:
  recall (matches FAISS found / frankly's matches, over all queries run), FAISS
  ids that frankly did not return (there should be none), and whether the sets
  are identical. Memory (B/entry): frankly's heap bytes per entry as the example
  reports them; brute force needs just the 32-byte hashes; for FAISS the growth
  of this process's resident set across `add` (after malloc_trim), per entry
  (the flat index holds the 32-byte codes, MultiHash holds them too plus one
  8-byte id per entry in each of its 16 hash tables).

  Everything is single-threaded: the Rust example uses one thread,
  faiss.omp_set_num_threads(1) is called, and OMP_NUM_THREADS=1 is set.
  FAISS latencies are measured around the Python call and so include the
  wrapper's overhead (a few microseconds, printed as `faiss call overhead`:
  a range_search on an empty index). Ratios are median latency / frankly's.
  Reference run: Intel(R) Xeon(R) Processor (2 cores, 24 GB), faiss-cpu 1.15.1.

How to run (from the repo root)
  python3 bench/bank_vs_faiss.py [--data uniform,clustered] [--n 10000000]
      [--queries 1000] [--flat-queries 50] [--brute-queries 100] [--seed 1]
      [--radius 31] [--json results.json]

  The script builds the example with `cargo build --release -p frankly-bank
  --example bank_bench` and runs `${CARGO_TARGET_DIR:-target}/release/examples/bank_bench`.
  The first run uses (or creates) the venv at
  ${FRANKLY_BENCH_VENV:-~/.cache/frankly/bench-venv} and pip-installs faiss-cpu
  and numpy there; later runs reuse it. At n = 10M the example needs about 1 GB,
  FAISS MultiHash about 2 GB, and the temporary data files 320 MB per dataset.
  Exits 1 if any result set differs from frankly's where it should not.
"""

import argparse
import ctypes
import ctypes.util
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchenv import cpu_model, ensure_venv

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = ["faiss-cpu", "numpy"]
BUILD_CMD = ["cargo", "build", "--release", "--quiet", "-p", "frankly-bank", "--example", "bank_bench"]
MULTIHASH = (256, 16, 16)  # d, nhash, bits per hash: 16 disjoint 16-bit substrings
NFLIP = 1




def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="uniform,clustered", help="comma-separated datasets (uniform, clustered)")
    ap.add_argument("--n", type=int, default=10_000_000, help="entries in the index (default 10000000)")
    ap.add_argument("--queries", type=int, default=1000, help="queries for frankly and MultiHash (default 1000)")
    ap.add_argument("--flat-queries", type=int, default=50, help="first queries run on faiss Flat (default 50)")
    ap.add_argument("--brute-queries", type=int, default=100, help="first queries run by brute force (default 100)")
    ap.add_argument("--radius", type=int, default=31, help="inclusive Hamming radius (default 31)")
    ap.add_argument("--seed", type=int, default=1, help="data seed for the example (default 1)")
    ap.add_argument("--json", type=Path, help="also write machine-readable results here")
    args = ap.parse_args()
    args.data = [d for d in args.data.split(",") if d]
    return args




def rss_bytes() -> int:
    """Current resident set size; falls back to the peak if /proc is missing.

    glibc keeps freed memory (e.g. of the previous index) and reuses it without
    it showing up in the RSS; malloc_trim(0) hands it back first, so that the
    growth across `add` counts everything the new index touches.
    """
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(sorted_ms: list[float], p: float) -> float:
    """Same nearest-rank rule as the Rust example."""
    return sorted_ms[round((len(sorted_ms) - 1) * p)]


def bank_bench_bin() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
    return (target if target.is_absolute() else REPO / target) / "release/examples/bank_bench"


def run_rust(args: argparse.Namespace, data: str, out_dir: Path) -> dict:
    argv = [str(bank_bench_bin()), "--n", str(args.n), "--queries", str(args.queries),
            "--radius", str(args.radius), "--data", data, "--seed", str(args.seed),
            "--brute-queries", str(args.brute_queries), "--write", str(out_dir)]
    print(f"frankly: {shlex.join(argv)}", file=sys.stderr, flush=True)
    out = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"bank_bench failed with exit code {out.returncode}")
    lines = [line for line in out.stdout.splitlines() if line.lstrip().startswith("{")]
    if not lines:
        sys.exit(f"bank_bench printed no JSON: {out.stdout!r}")
    return json.loads(lines[-1])


def read_results(path: Path) -> list[list[int]]:
    return [[int(v) for v in line.split()] for line in path.read_text().splitlines()]


def call_overhead_ms(faiss, np, radius: int) -> float:
    """Median time of a range_search on an empty index: the Python wrapper's cost."""
    index = faiss.IndexBinaryFlat(MULTIHASH[0])
    q = np.zeros((1, MULTIHASH[0] // 8), dtype=np.uint8)
    times = []
    for _ in range(1000):
        t0 = time.perf_counter_ns()
        index.range_search(q, radius + 1)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def run_faiss(index, name: str, hashes, queries, radius: int, want: list[list[int]]) -> dict:
    """Add `hashes` to `index`, run each query alone, compare with frankly's `want`."""
    n = hashes.shape[0]
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index.add(hashes)
    build_s = time.perf_counter() - t0
    rss_delta = rss_bytes() - rss0
    print(f"  {name}: built in {build_s:.2f} s, {len(queries)} queries ...", file=sys.stderr, flush=True)

    latencies, found, exact, extra, duplicates, identical = [], 0, 0, 0, 0, 0
    for q, expected in zip(queries, want):
        t0 = time.perf_counter_ns()
        _, _, ids = index.range_search(q[None, :], radius + 1)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
        got = set(ids.tolist())
        expected = set(expected)
        duplicates += len(ids) - len(got)
        found += len(got & expected)
        exact += len(expected)
        extra += len(got - expected)
        identical += got == expected
    ordered = sorted(latencies)
    return {
        "impl": name, "queries": len(queries), "build_s": build_s,
        "median_ms": statistics.median(latencies), "p99_ms": percentile(ordered, 0.99),
        "mean_ms": statistics.fmean(latencies),
        "found": found, "exact": exact, "recall": found / exact if exact else 1.0,
        "extra": extra, "duplicates": duplicates, "identical_queries": identical,
        "all_identical": identical == len(queries) and duplicates == 0,
        "rss_delta_bytes": rss_delta, "bytes_per_entry": rss_delta / n,
    }


def dataset(args: argparse.Namespace, faiss, np, data: str) -> dict:
    print(f"\n== {data}: n={args.n:,} queries={args.queries} radius<={args.radius}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="bank-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        fr = run_rust(args, data, tmp)
        rust_s = time.perf_counter() - t0
        d = MULTIHASH[0] // 8
        hashes = np.fromfile(tmp / "hashes.bin", dtype=np.uint8).reshape(-1, d)
        queries = np.fromfile(tmp / "queries.bin", dtype=np.uint8).reshape(-1, d)
        want = read_results(tmp / "frankly_results.txt")
    assert hashes.shape[0] == fr["n"] and queries.shape[0] == fr["queries"] == len(want), "bad example output"

    t0 = time.perf_counter()
    index = faiss.IndexBinaryMultiHash(*MULTIHASH)
    index.nflip = NFLIP
    mh = run_faiss(index, f"faiss MultiHash{MULTIHASH} nflip={NFLIP}", hashes, queries, args.radius, want)
    del index
    flat_q = min(args.flat_queries, len(want))
    flat = run_faiss(faiss.IndexBinaryFlat(MULTIHASH[0]), "faiss Flat", hashes, queries[:flat_q],
                     args.radius, want[:flat_q])
    faiss_s = time.perf_counter() - t0

    frankly_row = {
        "impl": "frankly (exact index)", "queries": fr["queries"], "build_s": fr["build_s"],
        "median_ms": fr["median_ms"], "p99_ms": fr["p99_ms"], "mean_ms": fr["mean_ms"],
        "found": fr["matches"], "exact": fr["matches"], "bytes_per_entry": fr["bytes_per_entry"],
        "all_identical": True,
    }
    brute_row = {
        "impl": "brute force (frankly scan)", "queries": fr["brute_queries"], "build_s": None,
        "median_ms": fr["brute_median_ms"], "p99_ms": None, "mean_ms": None,
        "found": None, "exact": None, "bytes_per_entry": float(d),
        "all_identical": bool(fr["brute_equal"]),
    }
    rows = [frankly_row, brute_row, mh, flat]
    for row in rows:
        row["ratio"] = row["median_ms"] / fr["median_ms"] if fr["median_ms"] else None
    return {"data": data, "frankly": fr, "rows": rows, "rust_wall_s": rust_s, "faiss_wall_s": faiss_s}


def print_table(res: dict) -> None:
    fr = res["frankly"]
    print(f"\n{res['data']}: n={fr['n']:,}, radius <= {fr['radius']}, {fr['queries']} queries, "
          f"frankly substrings={fr['substrings']}  (example {res['rust_wall_s']:.0f} s, "
          f"faiss {res['faiss_wall_s']:.0f} s wall)")

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    def matches(r):
        if r["found"] is None:
            return ("= index" if r["all_identical"] else "DIFFERS")
        return f"{r['found']:,}/{r['exact']:,}"

    header = ["implementation", "queries", "build s", "median ms", "p99 ms", "found/exact",
              "identical", "B/entry", "vs frankly"]
    table = [header] + [[
        r["impl"], str(r["queries"]), num(r["build_s"], ".2f"), num(r["median_ms"], ".4f"),
        num(r["p99_ms"], ".4f"), matches(r), "yes" if r["all_identical"] else "NO",
        num(r["bytes_per_entry"], ".1f"), "-" if r["ratio"] is None else f"{r['ratio']:.1f}x",
    ] for r in res["rows"]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.rjust(wd) if j else c.ljust(wd) for j, (c, wd) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * wd for wd in widths))
    for r in res["rows"][2:]:
        if r["extra"] or r["duplicates"] or r["recall"] < 1:
            print(f"  NOTE {r['impl']}: recall {r['recall']:.6f}, {r['extra']} ids not in frankly's results, "
                  f"{r['duplicates']} duplicate ids, {r['identical_queries']}/{r['queries']} queries identical")


def main() -> int:
    args = parse_args()
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(1)
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "faiss-cpu": importlib.metadata.version("faiss-cpu")}
    print(f"cpu: {cpu_model()}")
    print("  ".join(f"{k} {v}" for k, v in versions.items()))
    overhead = call_overhead_ms(faiss, np, args.radius)
    print(f"n: {args.n:,}  queries: {args.queries} (faiss Flat: first {args.flat_queries}, brute force: first "
          f"{args.brute_queries})  radius <= {args.radius}  seed {args.seed}  single-threaded")
    print(f"faiss call overhead (range_search on an empty index): {overhead * 1e3:.1f} us", flush=True)

    print(f"building: {shlex.join(BUILD_CMD)}", file=sys.stderr, flush=True)
    subprocess.run(BUILD_CMD, cwd=REPO, check=True)
    results = []
    for data in args.data:
        res = dataset(args, faiss, np, data)
        print_table(res)
        sys.stdout.flush()
        results.append(res)

    ok = True
    for res in results:
        fr, mh, flat = res["frankly"], res["rows"][2], res["rows"][3]
        ok &= bool(fr["brute_equal"]) and mh["extra"] == 0 and flat["all_identical"]
    if args.json:
        report = {"cpu": cpu_model(), **versions, "n": args.n, "queries": args.queries,
                  "flat_queries": args.flat_queries, "brute_queries": args.brute_queries,
                  "radius": args.radius, "seed": args.seed, "faiss_call_overhead_ms": overhead,
                  "multihash": {"d": MULTIHASH[0], "nhash": MULTIHASH[1], "b": MULTIHASH[2], "nflip": NFLIP},
                  "results": results}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    ensure_venv(__file__, REQUIREMENTS, "import numpy, faiss")
    sys.exit(main())
