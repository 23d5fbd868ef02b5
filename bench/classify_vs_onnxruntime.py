#!/usr/bin/env python3
"""tract (frankly-classify) against onnxruntime on the same preprocessed tensors.

    python3 bench/classify_vs_onnxruntime.py [--reps 10] [--rounds 3] [--json results.json]

For each shipped model and batch size it writes the input tensors once, then
alternates rounds of

  * onnxruntime (PyPI, CPUExecutionProvider, 1 intra-op and 1 inter-op
    thread, ORT_ENABLE_ALL, sequential), timing `session.run` on the batch;
  * frankly: `cargo run --release -p frankly-classify --example classify_bench`,
    which loads the model through its manifest (SHA-256 checked, optimized
    tract plan, single thread) and times the same batch;

and prints per-item medians over all rounds, the ratio tract / onnxruntime
(below 1 means tract is faster) and the largest output difference.

Inputs: open_nsfw gets the reference tensors the package's own preprocessing
made (models/reference/open_nsfw_input_*.f32); profanity_check gets the term
counts sklearn made for the reference sentences
(models/reference/profanity_check.json). Setup is automatic: a venv at
~/.cache/frankly/bench-venv (FRANKLY_BENCH_VENV) with onnxruntime and numpy.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchenv import cpu_model, ensure_venv  # noqa: E402

ensure_venv(__file__, ["onnxruntime==1.32.0", "numpy"], "import onnxruntime, numpy")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
RUST_CMD = "cargo run --release --quiet -p frankly-classify --example classify_bench --"


def open_nsfw_inputs(batch: int) -> np.ndarray:
    tensors = [np.fromfile(p, dtype="<f4").reshape(224, 224, 3)
               for p in sorted((MODELS / "reference").glob("open_nsfw_input_*.f32"))]
    return np.stack([tensors[i % len(tensors)] for i in range(batch)])


def profanity_inputs(batch: int) -> np.ndarray:
    rows = [r for r in json.loads((MODELS / "reference/profanity_check.json").read_text()) if "counts" in r]
    rows = [r for r in rows if r["counts"]] or rows
    dense = np.zeros((batch, 15442), dtype=np.float32)
    for i in range(batch):
        for col, n in rows[i % len(rows)]["counts"]:
            dense[i, col] = n
    return dense


CASES = [
    ("open_nsfw", "open_nsfw/open-nsfw.onnx", "input:0", open_nsfw_inputs, [1, 2, 4]),
    ("profanity_check", "profanity_check/profanity_check.onnx", "counts", profanity_inputs, [1, 8, 64]),
]


def ort_session(path: Path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def time_ort(session, name: str, x: np.ndarray, reps: int) -> tuple[list[int], np.ndarray]:
    out = session.run(None, {name: x})[0]
    session.run(None, {name: x})
    samples = []
    for _ in range(reps):
        t = time.perf_counter_ns()
        session.run(None, {name: x})
        samples.append(time.perf_counter_ns() - t)
    return samples, out


def run_rust(cmd: str, manifest: Path, batch: int, reps: int, tensor: Path) -> dict:
    argv = shlex.split(cmd) + [str(manifest), "--batch", str(batch), "--reps", str(reps), str(tensor)]
    out = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"rust command failed with exit code {out.returncode}: {shlex.join(argv)}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rust-cmd", default=RUST_CMD)
    args = ap.parse_args()

    print(f"cpu: {cpu_model()}")
    print(f"python {platform.python_version()}  onnxruntime {ort.__version__}  numpy {np.__version__}")
    print(f"rounds {args.rounds} x reps {args.reps} (+2 warm-ups each), single-threaded\n")
    if args.rust_cmd.startswith("cargo run"):
        # Build first, so that compiling is not timed in the first round.
        build = args.rust_cmd.rsplit(" --", 1)[0].replace("cargo run", "cargo build")
        subprocess.run(shlex.split(build), cwd=REPO, check=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="classify-bench-") as tmp:
        for model, file, input_name, make, batches in CASES:
            session = ort_session(MODELS / file)
            for batch in batches:
                x = make(batch)
                tensor = Path(tmp) / f"{model}-{batch}.f32"
                x.astype("<f4").tofile(tensor)
                ort_ns, tract_ns = [], []
                for round_ in range(args.rounds):
                    print(f"{model} batch {batch} round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
                    samples, ort_out = time_ort(session, input_name, x, args.reps)
                    ort_ns += samples
                    rust = run_rust(args.rust_cmd, MODELS / f"{model}.toml", batch, args.reps, tensor)
                    tract_ns += rust["samples_ns"]
                diff = float(np.max(np.abs(np.array(rust["outputs"], dtype=np.float64) - ort_out)))
                o, t = statistics.median(ort_ns) / batch, statistics.median(tract_ns) / batch
                rows.append({"model": model, "batch": batch, "samples": len(ort_ns), "onnxruntime_ns": o,
                             "tract_ns": t, "ratio": t / o, "max_abs_diff": diff})

    def fmt(ns: float) -> str:
        return f"{ns / 1e6:.3f}" if ns >= 1e5 else f"{ns / 1e3:.1f} us"

    header = ["model", "batch", "onnxruntime ms/item", "tract ms/item", "tract/ort", "max |diff|"]
    table = [header] + [[r["model"], str(r["batch"]), fmt(r["onnxruntime_ns"]), fmt(r["tract_ns"]),
                         f"{r['ratio']:.2f}", f"{r['max_abs_diff']:.1e}"] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.rjust(wd) if j else c.ljust(wd) for j, (c, wd) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * wd for wd in widths))
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "onnxruntime": ort.__version__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
