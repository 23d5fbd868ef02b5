#!/usr/bin/env python3
"""Side by side: `frankly eval robustness --media video` (vPDQ) and Thorn's
`perception` video hashers on the same transformed copies.

What it does
  1. Runs `frankly eval robustness --media video` on --corpus (or, with
     --frankly-out, reads a directory such a run wrote). frankly makes each
     transformed copy with ffmpeg, keeps it as OUT/videos/TRANSFORM/NAME.mp4
     (TRANSFORM with ':' made '_', NAME with '/' made '_' and extension .mp4),
     and writes its vPDQ numbers (video_robustness.csv, video_queries.csv).
  2. Metric check: feeds frankly's per-copy scores (100 - floor(% of the
     copy's frames found), own original and nearest other-source original,
     from video_queries.csv) to perception's
     `compute_threshold_precision_recall` (perception/benchmarking/common.py).
     Its recall at the precision target must equal frankly's
     `recall_at_precision`; the script exits 1 otherwise.
  3. Hashes the same original and copy files with perception 0.9.3's video
     hashers through its own benchmark machinery
     (`BenchmarkVideoTransforms.compute_hashes`, which decodes with OpenCV):
       pdq      FramewiseHasher(PDQHash, 1 frame/s, quality >= 50, every
                sampled frame kept) - the closest perception has to vPDQ
       phashu8  FramewiseHasher(PHashU8(hash_size=12), 1 frame/s,
                interframe_threshold=50, quality_threshold=90) - the
                framewise hasher of perception's own video benchmark
                example (its TMK there, SimpleSceneDetection over TMKL1,
                is not in 0.9.3)
       tmkl1    TMKL1() - defaults: PHashF frames at 15 frames/s, cosine
       tmkl2    TMKL2() - defaults: PHashF frames at 15 frames/s, TMK score
  4. Scores them with perception's video metric: a copy's distance to a
     video is the least distance between any of their frame hashes (one
     vector each for TMK); recall at the precision target and the threshold
     that reaches it (`compute_threshold_precision_recall`). Negatives are,
     as in frankly, the originals of *other sources* (--group-delimiter);
     perception itself counts every other video as a negative, which on
     this corpus makes re-encodes of one clip false positives - that
     variant is printed too, from perception's own
     `BenchmarkHashes.compute_threshold_recall`, and the script checks that
     its own distance computation reproduces perception's `compute_metrics`
     exactly (exit 1 otherwise).
  5. For the PDQ framewise hashes also vPDQ's own rule (HMA defaults:
     unique frames of quality >= 50, frame distance <= 31 bits, >= 80 % of
     the copy's frames found), to set "matched" and "% of copy found" next
     to frankly's.
  Prints markdown tables (also to --markdown FILE) with the command on top;
  per-copy distances go to WORK/perception_queries.csv, perception's hashes
  to WORK/perception_hashes.csv (reused when --frankly-out is given).

How to run (from the repo root)
  python3 bench/perception_video.py --corpus ../shared/vectors/vpdq/videos
      [--frankly target/release/frankly] [--transforms LIST] [--work DIR]
      [--frankly-out DIR] [--group-delimiter -] [--threads 2] [--workers 2]
      [--precision 0.999] [--hashers pdq,phashu8,tmkl1,tmkl2] [--markdown table.md]

  With --frankly-out the transforms are those of that run (--transforms is
  not used). Exit status 1 if a metric check fails.

  The first run creates a venv at ${FRANKLY_PERCEPTION_VENV:-~/.cache/frankly/perception-venv}
  with perception, pandas, pdqhash and ffmpeg-python (via bench/benchenv.py);
  later runs reuse it. perception's TMK is numpy code (no extension to build).
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault(
    "FRANKLY_BENCH_VENV",
    os.environ.get("FRANKLY_PERCEPTION_VENV") or str(Path.home() / ".cache/frankly/perception-venv"),
)
from benchenv import cpu_model, ensure_venv  # noqa: E402  (reads FRANKLY_BENCH_VENV at import)

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = ["perception[benchmarking]==0.9.3", "pandas", "pdqhash==0.2.8", "ffmpeg-python==0.2.0"]
PROBE = "import perception.benchmarking.video, perception.hashers.video, pandas, pdqhash, ffmpeg"
# frankly's defaults plus resize:0.7 and trim:0.6, the parameters of
# perception's `shrink` and `clip0.2` (keep 20 %..80 %).
DEFAULT_TRANSFORMS = "bitrate:250,resize:0.5,resize:0.7,crop:0.1,flip,trim:0.5,trim:0.6,letterbox:0.25,speed:1.5,fps:10"
HASHERS = ["pdq", "phashu8", "tmkl1", "tmkl2"]
VPDQ_QUALITY, VPDQ_DISTANCE, VPDQ_QUERY_PERCENT = 50, 31, 80.0

# perception's video benchmark (docs/examples/benchmarking.rst, "Video
# Hashing") and the frankly transform that does the same thing, if any.
def perception_equivalent(t: str) -> str:
    name, _, arg = t.partition(":")
    if name == "resize":
        return "`shrink` (scale 0.7): same" if arg == "0.7" else "`shrink`, at scale 0.7"
    if name == "trim":
        return "`clip0.2` (keep 20 %..80 %): same" if arg == "0.6" else "`clip0.2`, keeping 60 %"
    return {
        "bitrate": "none (its `noop` re-encodes at ffmpeg's default quality)",
        "crop": "none",
        "flip": "none",
        "letterbox": "`black_padding` (fit into 240x320 with bars), nearest",
        "speed": "none",
        "fps": "none (frame rate only inside `gif`, 0.4/s)",
    }.get(name, "none")


PERCEPTION_ONLY = ("black_frames (black frames before and after), slideshow (a frame every 2.5 s, "
                   "shown 2 s each), gif (GIF at 0.4 frames/s)")


def main() -> int:
    ensure_venv(__file__, REQUIREMENTS, PROBE)
    import numpy as np
    import pandas as pd
    import perception
    from perception import hashers
    from perception.benchmarking.common import BenchmarkHashes, compute_threshold_precision_recall
    from perception.benchmarking.video import BenchmarkVideoTransforms
    from perception.hashers.image.pdq import PDQHash
    from scipy import spatial

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--frankly", default="cargo run --release -q -p frankly-cli --")
    ap.add_argument("--transforms", default=DEFAULT_TRANSFORMS)
    ap.add_argument("--group-delimiter", default="-")
    ap.add_argument("--precision", type=float, default=0.999)
    ap.add_argument("--threads", type=int, default=2, help="frankly's worker threads")
    ap.add_argument("--workers", type=int, default=2, help="perception's hashing processes")
    ap.add_argument("--hashers", default=",".join(HASHERS))
    ap.add_argument("--work", help="working directory (default: a temporary one)")
    ap.add_argument("--frankly-out", help="reuse the OUT directory of an earlier frankly run instead of running it")
    ap.add_argument("--markdown", help="also write the tables here")
    args = ap.parse_args()
    started = time.time()
    command = "python3 bench/perception_video.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    work = Path(args.work or tempfile.mkdtemp(prefix="frankly-perception-video-"))
    work.mkdir(parents=True, exist_ok=True)
    timings = {}

    # 1. frankly: the copies and its own numbers.
    if args.frankly_out:
        out = Path(args.frankly_out)
    else:
        out = work / "frankly"
        cmd = shlex.split(args.frankly) + [
            "eval", "robustness", "--media", "video", "--corpus", args.corpus, "--transforms", args.transforms,
            "--group-delimiter", args.group_delimiter, "--precision", str(args.precision),
            "--threads", str(args.threads), "--out", str(out), "--no-plots",
        ]
        print("running:", " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
        t0 = time.time()
        subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        timings["frankly eval robustness --media video"] = time.time() - t0
    summary = pd.read_csv(out / "video_robustness.csv")
    queries = pd.read_csv(out / "video_queries.csv", keep_default_na=False)
    transforms = list(dict.fromkeys(summary["transform"]))
    videos = list(dict.fromkeys(queries["video"]))
    source = dict(zip(queries["video"], queries["source"]))
    corpus = Path(args.corpus)
    if not corpus.is_absolute():
        corpus = (Path.cwd() / corpus).resolve()

    # 2. perception's metric on frankly's vPDQ scores.
    precision_pct = 100 * args.precision
    mismatches = 0
    vpdq_rows = {}
    for t in transforms:
        q = queries[queries["transform"] == t]
        mine = summary[summary["transform"] == t].iloc[0]
        pos = (100 - np.floor(q["query_percent"].to_numpy(float))).astype(float)
        neg = (100 - np.floor(q["nearest_negative_percent"].to_numpy(float))).astype(float)
        threshold, _, recall = compute_threshold_precision_recall(pos=pos, neg=neg, precision_threshold=precision_pct)
        ours = mine["recall_at_precision"]
        ours_recall = None if pd.isna(ours) else 100 * float(ours)
        if ours_recall is None or abs(ours_recall - float(recall)) > 1e-3:
            mismatches += 1
            print(f"MISMATCH vpdq {t}: frankly recall {ours_recall}, perception's metric {recall}", file=sys.stderr)
        vpdq_rows[t] = {
            "matched": 100 * float(mine["rule_recall"]),
            "found": float(mine["mean_query_percent"]),
            "recall": ours_recall,
            "min_found": mine["threshold_at_precision"],
            "check": float(recall),
            "false_matches": int(mine["rule_false_matches"]),
            "negative_pairs": int(mine["negative_pairs"]),
            "queries": int(mine["queries"]),
        }

    # 3. perception's hashers on the same files.
    def copy_path(t: str, name: str) -> Path:
        return out / "videos" / t.replace(":", "_") / Path(name.replace("/", "_")).with_suffix(".mp4")

    records = []
    for name in videos:
        records.append({"guid": name, "transform_name": "noop", "filepath": str(corpus / name),
                        "input_filepath": str(corpus / name), "category": "corpus", "error": None})
        for t in transforms:
            path = copy_path(t, name)
            if path.exists():
                records.append({"guid": name, "transform_name": t, "filepath": str(path),
                                "input_filepath": str(corpus / name), "category": "corpus", "error": None})
    wanted = [h.strip() for h in args.hashers.split(",") if h.strip()]
    all_hashers = {
        "pdq": lambda: hashers.FramewiseHasher(
            frame_hasher=PDQHash(), interframe_threshold=-1, frames_per_second=1, quality_threshold=VPDQ_QUALITY),
        "phashu8": lambda: hashers.FramewiseHasher(
            frame_hasher=hashers.PHashU8(exclude_first_term=False, freq_shift=1, hash_size=12),
            interframe_threshold=50, frames_per_second=1, quality_threshold=90),
        "tmkl1": lambda: hashers.TMKL1(),
        "tmkl2": lambda: hashers.TMKL2(),
    }
    perception_hashers = {h: all_hashers[h]() for h in wanted}
    hashes_csv = work / "perception_hashes.csv"
    t0 = time.time()
    theirs = None
    if args.frankly_out is not None and hashes_csv.exists():
        theirs = BenchmarkHashes.load(str(hashes_csv))
        if set(theirs._df["hasher_name"]) != set(wanted) or set(theirs._df["filepath"]) != {r["filepath"] for r in records}:
            theirs = None  # made with other hashers or files: hash again
    if theirs is None:
        # One pass per frame rate: hashed in one pass, perception reads at a
        # common rate (15/s with TMK) and its frame repetition then yields two
        # frames per frame of a 10-frames/s copy, so a 1/s hasher would sample
        # that copy every 0.75 s instead of every second.
        bench = BenchmarkVideoTransforms(pd.DataFrame.from_records(records))
        passes = {}
        for h, hasher in perception_hashers.items():
            passes.setdefault(hasher.frames_per_second, {})[h] = hasher
        theirs = BenchmarkHashes(pd.concat(
            [bench.compute_hashes(group, max_workers=args.workers)._df for group in passes.values()],
            ignore_index=True))
        theirs.save(str(hashes_csv))
        timings["perception hashing (" + ", ".join(wanted) + ")"] = time.time() - t0
    df = theirs._df
    errors = df[df["error"].notna()][["filepath", "hasher_name", "error"]].drop_duplicates()
    for _, e in errors.iterrows():
        print(f"perception error: {e['hasher_name']} {e['filepath']}: {e['error']}", file=sys.stderr)

    # 4. perception's metric, two ways.
    t0 = time.time()
    # TMKL2's compute_distance returns a 1-element array; compute_metrics needs a scalar.
    custom = {h: scalar_distance(perception_hashers[h]) for h in wanted if perception_hashers[h].distance_metric == "custom"}
    as_is = theirs.compute_threshold_recall(
        precision_threshold=precision_pct, grouping=["transform_name"], custom_distance_metrics=custom).reset_index()
    as_is_metrics = theirs.compute_metrics(custom_distance_metrics=custom)

    vectors = {}  # (hasher, transform, guid) -> 2-D array of frame vectors
    for (h, t, g), rows in df.dropna(subset=["hash"]).groupby(["hasher_name", "transform_name", "guid"]):
        hasher = perception_hashers[h]
        vectors[(h, t, g)] = np.array([hasher.string_to_vector(s) for s in rows["hash"]])

    def distance(h: str, a, b) -> float:
        hasher = perception_hashers[h]
        if hasher.distance_metric == "custom":
            f = scalar_distance(hasher)
            return min(f(x, y) for x in a for y in b)
        return float(spatial.distance.cdist(a, b, metric=hasher.distance_metric).min())

    ours = {}  # (hasher, transform) -> per-copy rows
    checked = 0
    for h in wanted:
        for t in ["noop"] + transforms:
            rows = []
            for g in videos:
                if (h, t, g) not in vectors or (h, "noop", g) not in vectors:
                    continue
                copy = vectors[(h, t, g)]
                own = distance(h, copy, vectors[(h, "noop", g)])
                others = {o: distance(h, copy, vectors[(h, "noop", o)])
                          for o in videos if o != g and (h, "noop", o) in vectors}
                neg_source = min((d for o, d in others.items() if source[o] != source[g]), default=np.inf)
                neg_any = min(others.values(), default=np.inf)
                # perception's compute_metrics, per copy: least distance over its frame rows.
                theirs_rows = as_is_metrics[(as_is_metrics["hasher_name"] == h)
                                            & (as_is_metrics["transform_name"] == t)
                                            & (as_is_metrics["guid"] == g)]
                p_own = float(theirs_rows["distance_to_closest_correct_image"].min())
                p_any = float(theirs_rows["distance_to_closest_incorrect_image"].min())
                if not (np.isclose(p_own, own, rtol=1e-6, atol=1e-9) and np.isclose(p_any, neg_any, rtol=1e-6, atol=1e-9)):
                    mismatches += 1
                    print(f"MISMATCH distances {h} {t} {g}: ours {own} / {neg_any}, perception {p_own} / {p_any}",
                          file=sys.stderr)
                checked += 1
                row = {"guid": g, "own": own, "neg_source": neg_source}
                if h == "pdq":
                    row.update(vpdq_rule(copy, vectors[(h, "noop", g)]))
                rows.append(row)
            ours[(h, t)] = rows
    timings["metrics"] = time.time() - t0
    per_copy = work / "perception_queries.csv"
    pd.DataFrame.from_records(
        [{"hasher": h, "transform": t, **r} for (h, t), rows in ours.items() for r in rows]
    ).to_csv(per_copy, index=False)

    def recall_at(rows):
        if not rows:
            return None, None
        pos = np.array([r["own"] for r in rows])
        neg = np.array([r["neg_source"] for r in rows])
        threshold, _, recall = compute_threshold_precision_recall(pos=pos, neg=neg, precision_threshold=precision_pct)
        return float(recall), float(threshold)

    def fmt_threshold(h: str, x) -> str:
        if x is None:
            return "–"
        if h == "pdq":
            return f"{round(x * 256)} bits"
        return f"{x:.3g}"

    def cell(h: str, t: str) -> str:
        rows = ours.get((h, t), [])
        recall, threshold = recall_at(rows)
        if recall is None:
            return "–"
        # Copies (or originals) without a usable frame have no distance: say how many were scored.
        return recall_cell(recall, fmt_threshold(h, threshold)) + (f" (of {len(rows)})" if len(rows) < len(videos) else "")

    def recall_cell(recall: float, threshold: str) -> str:
        # perception reports a threshold with 0 % recall too (the first copy's
        # distance, when a negative is as near): there is none that works.
        return "0 %" if recall == 0 else f"{recall:.1f} % @ {threshold}"

    # 5. Tables.
    n_copies = {t: len(ours.get(("pdq", t), [])) if "pdq" in wanted else None for t in transforms}
    lines = [f"```\n{command}\n```", ""]
    lines += [
        "vPDQ's rule (quality >= 50, frame distance <= 31, >= 80 % of the copy's frames found), one frame a second on both sides:",
        "",
        "| transform | in perception's video benchmark | frankly vPDQ: matched | % of copy found | perception PDQ framewise: matched | % of copy found |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for t in transforms:
        v = vpdq_rows[t]
        # A copy with no usable frame is 0 % found, as in vPDQ (frankly counts it so).
        p = {r["guid"]: r for r in ours.get(("pdq", t), [])}
        rule = [p.get(g, {"matched": False, "query_percent": 0.0}) for g in videos]
        pm = f"{100 * np.mean([r['matched'] for r in rule]):.1f} %" if p else "–"
        pf = f"{np.mean([r['query_percent'] for r in rule]):.1f}" if p else "–"
        lines.append(f"| {t} | {perception_equivalent(t)} | {v['matched']:.1f} % | {v['found']:.1f} | {pm} | {pf} |")
    lines += [
        "",
        f"perception's metric: recall at {precision_pct:g} % precision @ the distance threshold that reaches it "
        "(vPDQ: distance = 100 - floor(% of copy found), so @ 20 means >= 80 % found; framewise: least distance over "
        "frame pairs; negatives: originals of other sources):",
        "",
        "| transform | frankly vPDQ | PDQ framewise | PHashU8 framewise | TMK L1 | TMK L2 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in transforms:
        v = vpdq_rows[t]
        vc = "–" if v["recall"] is None else recall_cell(v["recall"], str(100 - int(v["min_found"])))
        cells = [cell(h, t) if h in wanted else "–" for h in HASHERS]
        lines.append(f"| {t} | {vc} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "perception's own grouping (every other video a negative, re-encodes of the same clip included), "
        "from `BenchmarkHashes.compute_threshold_recall(grouping=['transform_name'])`:",
        "",
        "| transform | " + " | ".join(wanted) + " |",
        "|---|" + "---:|" * len(wanted),
    ]
    for t in transforms:
        cells = []
        for h in wanted:
            hit = as_is[(as_is["hasher_name"] == h) & (as_is["transform_name"] == t)]
            cells.append("–" if hit.empty else recall_cell(
                float(hit.iloc[0]["recall"]), fmt_threshold(h, float(hit.iloc[0]["threshold"]))))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    sources = sorted(set(source.values()))
    lines += [
        "",
        f"{len(videos)} videos of {len(sources)} sources ({', '.join(sources)}); {len(transforms)} transforms; "
        f"copies per transform: {', '.join(f'{t} {n}' for t, n in n_copies.items())}.",
        f"In perception's video benchmark but not frankly's: {PERCEPTION_ONLY}.",
        f"vPDQ false matches (copy, other-source original): "
        + ", ".join(f"{t} {vpdq_rows[t]['false_matches']}/{vpdq_rows[t]['negative_pairs']}" for t in transforms) + ".",
        f"Metric checks (perception's formula on frankly's scores; our distances vs perception's compute_metrics on "
        f"{checked} copies): {mismatches} mismatches.",
        f"perception {perception.__version__ if hasattr(perception, '__version__') else '0.9.3'}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, OpenCV {cv2_version()}; {cpu_model()}; "
        + "; ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; total {time.time() - started:.0f} s.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    print(f"\nwork dir {work} (per-copy distances: {per_copy}); frankly out {out}", file=sys.stderr)
    return 1 if mismatches else 0


def vpdq_rule(copy, original) -> dict:
    """vPDQ's brute-force match on PDQ frame hashes (already quality-filtered
    by FramewiseHasher): unique hashes, a frame found if some frame of the
    other side is within VPDQ_DISTANCE bits."""
    import numpy as np

    def unique(rows):
        seen, keep = set(), []
        for r in rows:
            key = r.tobytes()
            if key not in seen:
                seen.add(key)
                keep.append(r)
        return np.array(keep, dtype=bool)

    q, c = unique(copy), unique(original)
    if len(q) == 0 or len(c) == 0:
        return {"query_percent": 0.0, "compared_percent": 0.0, "matched": False}
    bits = (q[:, None, :] != c[None, :, :]).sum(axis=2)
    close = bits <= VPDQ_DISTANCE
    query_percent = 100 * close.any(axis=1).sum() / len(q)
    compared_percent = 100 * close.any(axis=0).sum() / len(c)
    matched = (query_percent > 0 or compared_percent > 0) and query_percent >= VPDQ_QUERY_PERCENT
    return {"query_percent": query_percent, "compared_percent": compared_percent, "matched": matched}


def scalar_distance(hasher):
    import numpy as np

    return lambda a, b: float(np.asarray(hasher.compute_distance(a, b)).ravel()[0])


def cv2_version() -> str:
    import cv2

    return cv2.__version__


if __name__ == "__main__":
    sys.exit(main())
