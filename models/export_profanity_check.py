#!/usr/bin/env python3
"""Reproduce models/profanity_check/ from the PyPI package alt-profanity-check 1.9.1.

Run from the repository root:

    python3 models/export_profanity_check.py

The package ships a scikit-learn 1.9.1 TfidfVectorizer and a
CalibratedClassifierCV (5 sigmoid-calibrated LinearSVC, ensemble) as joblib
pickles. sklearn's own ONNX converter emits string operators (tokenizer,
string normaliser) that tract cannot run, so this script writes instead:

  profanity_check.onnx   a numeric graph, opset 13, input "counts" float32
                         [N, V] (term counts in vocabulary order), output
                         "probabilities" float32 [N, 2] = (clean, profanity):

        tfidf = counts * idf                      (TfidfVectorizer, use_idf, smooth_idf)
        x     = tfidf / max(||tfidf||_2, 1e-12)   (norm="l2"; an empty row stays 0)
        f_i   = x . w_i + c_i                     (LinearSVC i = 1..5, decision function)
        p_i   = sigmoid(-(a_i * f_i + b_i))       (_SigmoidCalibration i)
        p     = mean_i p_i                        (ensemble=True)
        out   = [1 - p, p]

  tokenizer.json         what the graph needs from the text, for Rust to
                         tokenize exactly like sklearn's analyzer:
                         lowercase=True (str.lower), token_pattern
                         "(?u)\\b\\w\\w+\\b" (= maximal runs of at least two
                         word characters), the code-point ranges of Python's
                         `\\w` under this interpreter's Unicode database, and
                         the vocabulary in column order. Stop-word removal
                         (stop_words="english") cannot change a unigram count:
                         stop words were removed before the vocabulary was
                         built, so none of them is a column.
  LICENSE                the package's MIT licence.

Weights are stored as float32 (sklearn computes in float64); the reference
test bounds the difference at 1e-5 (models/reference_profanity_check.py).

The script needs scikit-learn 1.9.1 (the pickles are tied to it), joblib
1.6.0, numpy and onnx. It creates (once) a venv at
~/.cache/frankly/text-venv with them and re-executes itself there; override
with FRANKLY_TEXT_VENV. It checks the wheel's SHA-256, and prints the SHA-256
of both outputs, which models/profanity_check.toml pins.

Options: --dest DIR (default models/profanity_check), --wheel PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "alt-profanity-check"
VERSION = "1.9.1"
WHEEL = "alt_profanity_check-1.9.1-py3-none-any.whl"
WHEEL_SHA256 = "cccb8ce072306bac21188670777a25cfb1de978aa8c7a93c8e4a43c03b3945c3"
REQUIREMENTS = ["scikit-learn==1.9.1", "joblib==1.6.0", "numpy", "onnx==1.23.2"]
VENV = Path(os.environ.get("FRANKLY_TEXT_VENV") or Path.home() / ".cache/frankly/text-venv")


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin/python"
    if not py.exists():
        print(f"creating venv {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = "import sklearn, joblib, onnx, numpy; assert sklearn.__version__ == '1.9.1'"
    if subprocess.run([py, "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    os.execv(py, [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--dest", str(tmp), f"{PACKAGE}=={VERSION}"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return tmp / WHEEL


def word_char_ranges() -> list[list[int]]:
    """Code-point ranges (inclusive) that Python's `(?u)\\w` matches."""
    import re

    word = re.compile(r"(?u)\w")
    ranges: list[list[int]] = []
    start = None
    for cp in range(0x110000):
        is_word = bool(word.match(chr(cp)))
        if is_word and start is None:
            start = cp
        elif not is_word and start is not None:
            ranges.append([start, cp - 1])
            start = None
    if start is not None:
        ranges.append([start, 0x10FFFF])
    return ranges


def build_graph(idf, coefs, intercepts, cal_a, cal_b):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    v, k = coefs.shape
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    inits = [
        numpy_helper.from_array(f32(idf), "idf"),
        numpy_helper.from_array(f32([1e-12]), "norm_floor"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(f32(coefs), "svc_weights"),
        numpy_helper.from_array(f32(intercepts), "svc_intercepts"),
        numpy_helper.from_array(f32(cal_a), "calibration_a"),
        numpy_helper.from_array(f32(cal_b), "calibration_b"),
        numpy_helper.from_array(f32([1.0]), "one"),
    ]
    n = helper.make_node
    nodes = [
        n("Mul", ["counts", "idf"], ["tfidf"]),
        n("Mul", ["tfidf", "tfidf"], ["tfidf_sq"]),
        n("ReduceSum", ["tfidf_sq", "axis1"], ["sum_sq"], keepdims=1),
        n("Sqrt", ["sum_sq"], ["norm"]),
        n("Max", ["norm", "norm_floor"], ["norm_safe"]),
        n("Div", ["tfidf", "norm_safe"], ["features"]),
        n("MatMul", ["features", "svc_weights"], ["svc_dot"]),
        n("Add", ["svc_dot", "svc_intercepts"], ["decision"]),
        n("Mul", ["decision", "calibration_a"], ["cal_scaled"]),
        n("Add", ["cal_scaled", "calibration_b"], ["cal_logit"]),
        n("Neg", ["cal_logit"], ["cal_neg"]),
        n("Sigmoid", ["cal_neg"], ["calibrated"]),
        n("ReduceMean", ["calibrated"], ["profanity"], axes=[1], keepdims=1),
        n("Sub", ["one", "profanity"], ["clean"]),
        n("Concat", ["clean", "profanity"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "profanity_check",
        [helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["N", v])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        producer_name="frankly models/export_profanity_check.py",
        producer_version="1",
        doc_string=f"alt-profanity-check {VERSION} (MIT): TF-IDF + {k} sigmoid-calibrated LinearSVC, mean",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> int:
    ensure_venv()
    import joblib
    import numpy as np
    import sklearn

    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=here / "profanity_check")
    ap.add_argument("--wheel", type=Path, default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="export_profanity_check.") as t:
        wheel = args.wheel or download_wheel(Path(t))
        digest = sha256(wheel.read_bytes())
        print(f"wheel: {wheel.name} sha256={digest}")
        if digest != WHEEL_SHA256:
            print(f"error: wheel sha256 {digest}, expected {WHEEL_SHA256}", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheel) as zf:
            licence = zf.read(f"alt_profanity_check-{VERSION}.dist-info/licenses/LICENSE")
            for member in ("vectorizer.joblib", "model.joblib"):
                (Path(t) / member).write_bytes(zf.read(f"profanity_check/data/{member}"))
        vectorizer = joblib.load(Path(t) / "vectorizer.joblib")
        model = joblib.load(Path(t) / "model.joblib")

    params = vectorizer.get_params()
    expected = {"analyzer": "word", "lowercase": True, "ngram_range": (1, 1), "norm": "l2",
                "use_idf": True, "smooth_idf": True, "sublinear_tf": False, "binary": False,
                "strip_accents": None, "preprocessor": None, "tokenizer": None,
                "token_pattern": r"(?u)\b\w\w+\b"}
    for key, value in expected.items():
        if params[key] != value:
            print(f"error: vectorizer {key}={params[key]!r}, the export assumes {value!r}", file=sys.stderr)
            return 1
    if model.method != "sigmoid" or list(model.classes_) != [0, 1]:
        print(f"error: unexpected model {model.method} {model.classes_}", file=sys.stderr)
        return 1

    vocab = sorted(vectorizer.vocabulary_.items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    terms = [t for t, _ in vocab]
    coefs, intercepts, cal_a, cal_b = [], [], [], []
    for cc in model.calibrated_classifiers_:
        (calibrator,) = cc.calibrators
        coefs.append(cc.estimator.coef_[0])
        intercepts.append(cc.estimator.intercept_[0])
        cal_a.append(calibrator.a_)
        cal_b.append(calibrator.b_)
    onnx_bytes = build_graph(vectorizer.idf_, np.stack(coefs, axis=1), intercepts, cal_a, cal_b)

    import unicodedata

    tokenizer = {
        "format": "frankly-text-tokenizer-v1",
        "source": f"PyPI {PACKAGE} {VERSION}, profanity_check/data/vectorizer.joblib (scikit-learn {sklearn.__version__})",
        "lowercase": True,
        "token_pattern": params["token_pattern"],
        "min_token_chars": 2,
        "word_chars_unicode_version": unicodedata.unidata_version,
        "word_chars": word_char_ranges(),
        "vocabulary": terms,
    }
    tok_bytes = (json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    args.dest.mkdir(parents=True, exist_ok=True)
    for name, data in (("profanity_check.onnx", onnx_bytes), ("tokenizer.json", tok_bytes), ("LICENSE", licence)):
        out = args.dest / name
        part = out.with_name(out.name + ".part")
        part.write_bytes(data)
        os.replace(part, out)
        print(f"wrote {out} ({len(data)} bytes) sha256={sha256(data)}")
    print(f"vocabulary {len(terms)} terms, {len(model.calibrated_classifiers_)} calibrated classifiers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
