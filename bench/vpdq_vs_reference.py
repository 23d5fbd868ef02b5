#!/usr/bin/env python3
"""frankly's vPDQ against Meta's C++ vPDQ, built here, on the same videos.

What it does
  1. Builds Meta's `vpdq-hash-video` from a ThreatExchange checkout or bare git
     directory (`--threatexchange`, for example the one the `fetch` tool brings)
     with cmake, against the system's FFmpeg (Debian's 5.1), in a temporary
     directory. Nothing of Meta's is copied into this repository.
  2. Compiles a one-function shared library that makes `av_get_cpu_flags()`
     return 0, so that, preloaded (LD_PRELOAD), FFmpeg runs its portable C code
     everywhere ("SIMD off"). Without it FFmpeg picks its x86 SIMD code ("SIMD
     on", stock).
  3. Hashes every video in --videos (default ../shared/vectors/vpdq/videos) on
     one thread, every frame (`-r 0 -t 1`), with Meta's tool SIMD on and SIMD
     off, and with frankly (`cargo run --release -p frankly-video --example
     vpdq_bench`), alternating, --rounds times; the time of each side is the
     median of its rounds, decode included.
  4. Compares the hashes frame by frame: frankly against Meta SIMD off (same
     decoded frames, same C conversion: should be identical), against Meta SIMD
     on, and against the published hashes when --published has the file.
  5. Prints one row per video and the ratio Meta(SIMD on) / frankly.

Needs (beyond the workspace's own): Meta's CMake build wants every libav*
library through pkg-config (Debian: apt install libavdevice-dev
libavfilter-dev libswresample-dev) and a C++ compiler.

How to run (from the repo root)
  python3 bench/vpdq_vs_reference.py --threatexchange /work/.mirror/facebook+ThreatExchange/repo
      [--videos DIR] [--published DIR] [--rounds 3] [--json out.json]

Exit status 1 if frankly and Meta-SIMD-off differ on any frame.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchenv import cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NO_SIMD_C = "int av_get_cpu_flags(void) { return 0; }\n"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build_meta(threatexchange: Path, work: Path) -> Path:
    src = work / "te"
    src.mkdir()
    git_dir = threatexchange if (threatexchange / "HEAD").exists() and not (threatexchange / ".git").exists() else threatexchange / ".git"
    archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "HEAD", "vpdq"], check=True, capture_output=True).stdout
    sh(["tar", "-x", "-C", str(src)], input=archive)
    commit = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    build = work / "build"
    sh(["cmake", "-S", str(src / "vpdq"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"], stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2), "--target", "vpdq-hash-video"], stdout=subprocess.DEVNULL)
    exe = next(build.rglob("vpdq-hash-video"))
    print(f"built Meta's vpdq-hash-video from ThreatExchange {commit[:8]}", file=sys.stderr)
    return exe


def build_no_simd(work: Path) -> Path:
    c = work / "nosimd.c"
    c.write_text(NO_SIMD_C)
    so = work / "libnosimd.so"
    sh(["cc", "-shared", "-fPIC", "-O2", "-o", str(so), str(c)])
    return so


def parse(path: Path) -> list[tuple[int, int, str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            f, q, h, _ = line.split(",")
            rows.append((int(f), int(q), h))
    return rows


def distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def compare(ours, theirs) -> dict:
    same = sum(1 for a, b in zip(ours, theirs) if a == b)
    far = max((distance(a[2], b[2]) for a, b in zip(ours, theirs)), default=0)
    return {"frames": len(ours), "other_frames": len(theirs), "identical": same, "max_distance": far}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threatexchange", type=Path, required=True)
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared/vectors/vpdq/videos")
    ap.add_argument("--published", type=Path, default=ROOT.parent / "shared/vectors/vpdq/sample-hashes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    videos = sorted(args.videos.glob("*.mp4"))
    if not videos:
        sys.exit(f"no .mp4 in {args.videos}")
    sh(["cargo", "build", "--release", "-q", "-p", "frankly-video", "--example", "vpdq_bench"], cwd=ROOT)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    ours_exe = target / "release/examples/vpdq_bench"

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        meta = build_meta(args.threatexchange, work)
        no_simd = build_no_simd(work)
        out = {k: work / k for k in ("frankly", "simd_on", "simd_off")}
        for d in out.values():
            d.mkdir()
        times = {k: {v.stem: [] for v in videos} for k in out}
        for _ in range(args.rounds):
            for v in videos:
                for side in ("simd_on", "simd_off", "frankly"):
                    env = dict(os.environ)
                    if side == "simd_off":
                        env["LD_PRELOAD"] = str(no_simd)
                    if side == "frankly":
                        cmd = [str(ours_exe), str(out[side]), str(v)]
                    else:
                        cmd = [str(meta), "-i", str(v), "-o", str(out[side] / f"{v.stem}.txt"), "-r", "0", "-t", "1"]
                    start = time.perf_counter()
                    sh(cmd, env=env, stdout=subprocess.DEVNULL)
                    times[side][v.stem].append(time.perf_counter() - start)

        rows, failed = [], False
        for v in videos:
            ours = parse(out["frankly"] / f"{v.stem}.txt")
            row = {
                "video": v.stem,
                "vs_meta_simd_off": compare(ours, parse(out["simd_off"] / f"{v.stem}.txt")),
                "vs_meta_simd_on": compare(ours, parse(out["simd_on"] / f"{v.stem}.txt")),
            }
            pub = args.published / f"{v.stem}.txt"
            if pub.exists():
                row["vs_published"] = compare(ours, parse(pub))
                row["meta_simd_off_vs_published"] = compare(parse(out["simd_off"] / f"{v.stem}.txt"), parse(pub))
            for side in out:
                row[f"{side}_seconds"] = statistics.median(times[side][v.stem])
            row["ratio_meta_simd_on_over_frankly"] = row["simd_on_seconds"] / row["frankly_seconds"]
            off = row["vs_meta_simd_off"]
            failed |= off["identical"] != off["frames"] or off["frames"] != off["other_frames"]
            rows.append(row)

    print(f"machine: {cpu_model()}, one thread, every frame, median of {args.rounds} rounds (decode included)")
    print(f"{'video':38} {'=off':>9} {'=on':>9} {'=pub':>9} {'frankly s':>9} {'meta s':>8} {'ratio':>6}")
    for r in rows:
        off, on, pub = r["vs_meta_simd_off"], r["vs_meta_simd_on"], r.get("vs_published")
        cell = lambda c: f"{c['identical']}/{c['frames']}" if c else "-"  # noqa: E731
        print(
            f"{r['video']:38} {cell(off):>9} {cell(on):>9} {cell(pub):>9} "
            f"{r['frankly_seconds']:9.3f} {r['simd_on_seconds']:8.3f} {r['ratio_meta_simd_on_over_frankly']:6.2f}"
        )
    total = sum(r["simd_on_seconds"] for r in rows) / sum(r["frankly_seconds"] for r in rows)
    print(f"all videos: Meta (SIMD on) / frankly = {total:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": cpu_model(), "rows": rows}, indent=1))
    if failed:
        print("frankly differs from Meta's C++ with SIMD off", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
