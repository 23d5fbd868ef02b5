#!/usr/bin/env python3
"""frankly's Python package against the Python tools it replaces, same input, same run.

What it measures
  1. PDQ of a 12-megapixel photo (a shared-corpus photo resized by Pillow to
     4000x3000) given as a numpy array: `frankly.pdq(array)` and
     `frankly.pdqhash.compute(array)` against PyPI `pdqhash.compute(array)`
     (Meta's C++ behind numpy's luma conversion, what HMA runs). Medians of
     --reps calls each; the results must be equal.
  2. Matching at --n entries (random 256-bit hashes): `frankly.Bank(array)`
     then `Bank.query_many(queries, 31)` against FAISS
     `IndexBinaryMultiHash(256, 16, 16)` with `nflip = 1` (HMA's PDQ index),
     `range_search(queries, 32)` (FAISS keeps distances strictly below its
     radius). Both get the whole batch of --queries queries (half are
     entries with 0 to 31 bits flipped, half random) and every core (FAISS
     through OpenMP, frankly through rayon). Medians of --reps batches.
     frankly's answer is exact; FAISS's recall against it is printed.

How to run (from the repo root), in a Python with the frankly wheel installed:
  pip install ./bindings/python faiss-cpu pdqhash==0.2.8 pillow
  python bench/python_bindings.py [--n 10000000] [--queries 1000] [--reps 5]
"""

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

import frankly
from frankly import pdqhash as frankly_pdqhash

ROOT = Path(__file__).resolve().parents[1]


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def median_ms(fn, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), out


def bench_pdq(reps):
    import pdqhash

    photo = ROOT / "tests/data/photos/lomiri_Bridge_by_Sander_Klootwijk.jpg"
    pixels = np.asarray(Image.open(photo).convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR))
    reference_ms, (vector, quality) = median_ms(lambda: pdqhash.compute(pixels), reps)
    ours_ms, (hex_hash, our_quality) = median_ms(lambda: frankly.pdq(pixels), reps)
    dropin_ms, (our_vector, _) = median_ms(lambda: frankly_pdqhash.compute(pixels), reps)
    assert np.array_equal(vector, our_vector) and quality == our_quality
    assert hex_hash == np.packbits(vector.astype(np.uint8)).tobytes().hex()
    print(f"PDQ, 4000x3000 array, median of {reps}:")
    print(f"  pdqhash.compute          {reference_ms:8.1f} ms")
    print(f"  frankly.pdq              {ours_ms:8.1f} ms   pdqhash / frankly = {reference_ms / ours_ms:.1f}x")
    print(f"  frankly.pdqhash.compute  {dropin_ms:8.1f} ms   pdqhash / frankly = {reference_ms / dropin_ms:.1f}x")


def bench_match(n, n_queries, reps, seed):
    import faiss

    rng = np.random.default_rng(seed)
    entries = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    near = entries[rng.integers(0, n, size=n_queries // 2)].copy()
    bits = np.unpackbits(near, axis=1)
    for row, flips in zip(bits, rng.integers(0, 32, size=len(bits))):
        row[rng.choice(256, size=flips, replace=False)] ^= 1
    queries = np.vstack([np.packbits(bits, axis=1), rng.integers(0, 256, size=(n_queries - len(near), 32), dtype=np.uint8)])

    start = time.perf_counter()
    bank = frankly.Bank(entries, name="bench")
    frankly_build = time.perf_counter() - start
    threads = os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
    index.add(entries)
    faiss_build = time.perf_counter() - start

    ours_ms, (q, e, d) = median_ms(lambda: bank.query_many(queries, 31), reps)
    theirs_ms, (lims, _, ids) = median_ms(lambda: index.range_search(queries, 32), reps)
    exact = set(zip(q.tolist(), e.tolist()))
    found = {(i, int(j)) for i in range(len(queries)) for j in ids[lims[i] : lims[i + 1]]}
    assert found <= exact, "FAISS returned a pair frankly did not"
    print(f"matching, {n:,} entries, {len(queries)} queries in one batch, radius 31, {threads} threads, median of {reps}:")
    print(f"  build: frankly.Bank {frankly_build:.1f} s, FAISS MultiHash add {faiss_build:.1f} s")
    print(f"  FAISS IndexBinaryMultiHash {theirs_ms:9.1f} ms  ({len(found)} of {len(exact)} pairs: recall {len(found) / max(len(exact), 1):.3f})")
    print(f"  frankly Bank.query_many    {ours_ms:9.1f} ms  (exact)   FAISS / frankly = {theirs_ms / ours_ms:.1f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}")
    bench_pdq(args.reps)
    bench_match(args.n, args.queries, args.reps, args.seed)


if __name__ == "__main__":
    main()
