#!/usr/bin/env python3
"""Reference NudeNet 3.4.2 detections from onnxruntime, for frankly's detector path to match.

NudeNet is AGPL-3.0 and not shipped (models/fetch_nudenet.py fetches it for
users who accept that). This script describes what frankly must reproduce
when a user supplies it:

    python3 models/fetch_nudenet.py
    python3 models/reference_nudenet.py

It re-executes itself in ~/.cache/frankly/nudenet-venv (created with
nudenet==3.4.2, onnxruntime==1.32.0, opencv-python-headless, numpy) and, for
each photo of the shared corpus (../shared/corpus/), calls the package's OWN functions:

    nudenet.nudenet._read_image(path, 320)
        cv2.imread (BGR) -> cvtColor(COLOR_RGBA2BGR), which on a 3-channel
        image swaps R and B -> pad right and bottom with black to a square ->
        cv2.dnn.blobFromImage(1/255, (320, 320), swapRB=True), which resizes
        with INTER_LINEAR and swaps R and B back: the model gets BGR planes.
    onnxruntime (1 intra-op, 1 inter-op thread) on models/nudenet/320n.onnx
    nudenet.nudenet._postprocess(...)
        boxes whose best class scores >= 0.2, class-agnostic
        cv2.dnn.NMSBoxes(score 0.25, IoU 0.45), boxes in original pixels.

and writes models/reference/nudenet.json: per photo the detections (class,
score, box as NudeNet returns it, integers) and, per label, the best
detection's score (0 when none), which is what frankly reports as the label's
score. For the first two photos it also writes the exact input tensor as
bytes, models/reference/nudenet_input_<stem>.u8: the resized BGR image,
planar [3, 320, 320]; the script checks that the float tensor the model got
is exactly u8 * float32(1/255), so tests can rebuild it bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("FRANKLY_NUDENET_VENV") or Path.home() / ".cache/frankly/nudenet-venv")
REQUIREMENTS = ["nudenet==3.4.2", "onnxruntime==1.32.0", "opencv-python-headless", "numpy"]


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin/python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([py, "-c", "import nudenet, onnxruntime, cv2"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    os.execv(py, [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def main() -> int:
    ensure_venv()
    import cv2
    import numpy as np
    import onnxruntime as ort
    from nudenet import nudenet as nn

    here = Path(__file__).resolve().parent
    model_path = here / "nudenet/320n.onnx"
    labels = nn.__labels if hasattr(nn, "__labels") else getattr(nn, "_nudenet__labels", None)
    labels = labels or nn.__dict__["__labels"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    corpus = here.parent.parent / "shared/corpus"
    photos = sorted(p for p in corpus.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rows = []
    tensors = 0
    for photo in photos:
        blob, x_ratio, y_ratio, x_pad, y_pad, w, h = nn._read_image(str(photo), 320)
        mat = cv2.imread(str(photo))
        side = max(mat.shape[:2])
        padded = cv2.copyMakeBorder(mat, 0, side - mat.shape[0], 0, side - mat.shape[1], cv2.BORDER_CONSTANT)
        u8 = cv2.resize(padded, (320, 320)).transpose(2, 0, 1)
        if not np.array_equal(blob[0], u8.astype(np.float32) * np.float32(1 / 255.0)):
            print(f"error: {photo.name}: the blob is not the BGR u8 image times float32(1/255)", file=sys.stderr)
            return 1
        outputs = session.run(None, {session.get_inputs()[0].name: blob})
        detections = nn._postprocess(outputs, x_pad, y_pad, x_ratio, y_ratio, w, h, 320, 320)
        scores = {label: 0.0 for label in labels}
        for d in detections:
            scores[d["class"]] = max(scores[d["class"]], d["score"])
        row = {"file": photo.name, "input_sha256": hashlib.sha256(np.ascontiguousarray(blob).tobytes()).hexdigest(),
               "scores": scores, "detections": detections}
        if detections and tensors < 2:
            tensors += 1
            name = f"nudenet_input_{photo.stem}.u8"
            (here / "reference" / name).write_bytes(np.ascontiguousarray(u8).tobytes())
            row["input_u8"] = name
        rows.append(row)
    header = {"package": "nudenet 3.4.2", "onnxruntime": ort.__version__, "opencv": cv2.__version__,
              "python": platform.python_version(), "labels": labels,
              "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest()}
    out = here / "reference/nudenet.json"
    out.write_text(json.dumps([header, *rows], indent=1) + "\n")
    print(f"wrote {out}: {len(rows)} photos, {sum(len(r['detections']) for r in rows)} detections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
