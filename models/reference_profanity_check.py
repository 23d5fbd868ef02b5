#!/usr/bin/env python3
"""Reference outputs of alt-profanity-check 1.9.1 (scikit-learn), for the Rust tokenizer and
the tract-onnx text classifier to match.

Run from the repository root (after models/export_profanity_check.py):

    python3 models/reference_profanity_check.py

It re-executes itself in the venv of export_profanity_check.py
(~/.cache/frankly/text-venv, scikit-learn 1.9.1, plus onnxruntime) and, for
each sentence of SENTENCES below, writes to models/reference/profanity_check.json:

  "counts":      the term counts sklearn's own analyzer gives
                 (vectorizer.build_analyzer() then the vocabulary), as
                 [[column, count], ...] sorted by column: the Rust tokenizer
                 must produce exactly these;
  "profanity":   the package's own `profanity_check.predict_prob([text])`,
                 i.e. sklearn in float64: the Rust classifier must be within 1e-5;
  "onnxruntime": the exported graph (models/profanity_check/profanity_check.onnx)
                 on onnxruntime 1 thread, fed the counts above: a check of the
                 export itself, which must be within 1e-5 of "profanity" (the
                 script fails otherwise).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("FRANKLY_TEXT_VENV") or Path.home() / ".cache/frankly/text-venv")
REQUIREMENTS = ["alt-profanity-check==1.9.1", "scikit-learn==1.9.1", "joblib==1.6.0", "numpy",
                "onnx==1.23.2", "onnxruntime==1.32.0"]

# Clean and offensive messages, insults, casing, punctuation, digits, underscores, obfuscation,
# and Unicode cases where tokenization is easy to get wrong (accents, CJK, Greek final sigma,
# Turkish dotted I, combining marks, emoji, fullwidth letters, non-breaking spaces).
SENTENCES = [
    "",
    "   ",
    "hello",
    "Have a nice day!",
    "See you at the station at 5pm, bring the tickets.",
    "Can you send me the report by Friday?",
    "I love this song so much",
    "The meeting moved to room 204.",
    "Thanks for dinner last night, it was lovely.",
    "you are a fucking idiot",
    "YOU ARE A FUCKING IDIOT",
    "You're an idiot.",
    "shut up, loser",
    "go to hell",
    "what the hell is this",
    "this is bullshit",
    "you stupid piece of shit",
    "fuck",
    "f*ck you",
    "fuuuuuck",
    "sh1t",
    "dumbass",
    "dumb_ass",
    "you_are_an_idiot",
    "kill yourself",
    "I will kill you",
    "nobody likes you, you ugly freak",
    "damn, that was close",
    "what a bitch of a day",
    "son of a b!tch",
    "he's such a jerk",
    "stop being a crybaby",
    "I hate mondays",
    "I hate you",
    "a a a a a",
    "the the the the",
    "idiot idiot idiot idiot idiot idiot",
    "Idiot! IDIOT? idiot...",
    "pokémon josé beyoncé",
    "POKÉMON",
    "連絡 見学 迷惑",
    "竜龙",
    "ΜΕΛ ετητης",
    "ΟΔΟΣ",
    "İstanbul idiot",
    "नमस्ते मूर्ख idiot",
    "idiot\u00a0moron",
    "idiot\u200bmoron",
    "ｉｄｉｏｔ",
    "idiot😀moron",
    "💩💩💩",
    "e\u0301xpert expért",
    "snunɐw",
    "x1 x2 42 2024 ab_cd __ _a a_",
    "http://example.com/idiot?q=fuck",
    "tab\tseparated\nnew\nlines",
    "l'imbécile est un crétin",
    "du bist ein Idiot",
    "eres un idiota",
    "stupid " * 50,
]


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin/python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = "import profanity_check, onnxruntime, sklearn; assert sklearn.__version__ == '1.9.1'"
    if subprocess.run([py, "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    os.execv(py, [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def main() -> int:
    ensure_venv()
    import hashlib

    import numpy as np
    import onnxruntime as ort
    import sklearn
    from profanity_check import profanity_check as pc

    here = Path(__file__).resolve().parent
    model_path = here / "profanity_check/profanity_check.onnx"
    vectorizer = pc.vectorizer
    analyzer = vectorizer.build_analyzer()
    vocab = vectorizer.vocabulary_
    width = len(vocab)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])

    rows = []
    worst = 0.0
    for text in SENTENCES:
        counts: dict[int, int] = {}
        for token in analyzer(text):
            if token in vocab:
                counts[vocab[token]] = counts.get(vocab[token], 0) + 1
        dense = np.zeros((1, width), dtype=np.float32)
        for col, n in counts.items():
            dense[0, col] = n
        sk = float(pc.predict_prob([text])[0])
        ort_p = session.run(["probabilities"], {"counts": dense})[0]
        worst = max(worst, abs(float(ort_p[0, 1]) - sk))
        rows.append({
            "text": text,
            "counts": sorted([col, n] for col, n in counts.items()),
            "profanity": sk,
            "onnxruntime": float(ort_p[0, 1]),
        })
    header = {
        "package": "alt-profanity-check 1.9.1",
        "scikit_learn": sklearn.__version__,
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "max_abs_diff_onnxruntime_vs_sklearn": worst,
    }
    out = here / "reference/profanity_check.json"
    out.write_text(json.dumps([header, *rows], ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {out}: {len(rows)} sentences; onnxruntime vs sklearn max |diff| {worst:.3g}")
    if worst > 1e-5:
        print("error: the exported graph differs from sklearn by more than 1e-5", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
