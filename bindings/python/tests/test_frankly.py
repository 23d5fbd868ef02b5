"""Tests of the Python package against its references: Meta's C++ through
PyPI ``pdqhash`` 0.2.8, brute-force matching, and the Rust library's own
verdicts. Run by ``.ci/run`` in a venv with the built wheel."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

import frankly
from frankly import pdqhash as frankly_pdqhash

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT.parent / "shared" / "corpus"
PHOTOS = sorted(p for p in CORPUS.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def test_the_whole_shared_corpus_is_there():
    # Every photo with a reference, not a sample.
    assert len(PHOTOS) == 58, f"{CORPUS} has {len(PHOTOS)} photos"


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_pdq_equals_pdqhash_on_the_shared_corpus(path):
    pixels = np.asarray(Image.open(path).convert("RGB"))
    vector, quality = pdqhash.compute(pixels)
    ours, our_quality = frankly_pdqhash.compute(pixels)
    assert ours.dtype == vector.dtype and ours.shape == vector.shape
    assert np.array_equal(ours, vector) and our_quality == quality
    # The hex form is the bit vector packed most significant bit first.
    hex_hash = np.packbits(vector.astype(np.uint8)).tobytes().hex()
    assert frankly.pdq(pixels) == (hex_hash, quality)
    # The file itself decodes to Pillow's pixels (libjpeg-turbo), so the hash is HMA's.
    assert frankly.pdq(path) == (hex_hash, quality)
    assert frankly.pdq(Image.open(path)) == (hex_hash, quality)

    vectors, dihedral_quality = pdqhash.compute_dihedral(pixels)
    our_vectors, our_dihedral_quality = frankly_pdqhash.compute_dihedral(pixels)
    assert our_dihedral_quality == dihedral_quality
    assert all(np.array_equal(a, b) for a, b in zip(our_vectors, vectors)) and len(our_vectors) == 8
    hexes, _ = frankly.pdq_dihedral(pixels)
    assert hexes == [np.packbits(v.astype(np.uint8)).tobytes().hex() for v in vectors]

    floats, float_quality = pdqhash.compute_float(pixels)
    our_floats, our_float_quality = frankly_pdqhash.compute_float(pixels)
    assert our_float_quality == float_quality and our_floats.dtype == floats.dtype
    assert np.array_equal(our_floats, floats)


VPDQ = ROOT.parent / "shared" / "vectors" / "vpdq"
# The 2022 full-resolution sample videos whose published hashes libswscale's C code made.
VIDEOS = [
    "chair-19-sd-bar", "chair-20-sd-bar", "chair-22-sd-grey-bar", "chair-22-sd-sepia-bar",
    "chair-22-with-large-logo-bar", "chair-22-with-small-logo-bar", "chair-orig-22-sd-bar",
    "doorknob-hd-no-bar", "pattern-hd-no-bar", "pattern-longer-no-bar", "pattern-sd-grey-bar",
    "pattern-sd-with-large-logo-bar", "pattern-sd-with-small-logo-bar",
]


@pytest.mark.parametrize("name", VIDEOS)
def test_vpdq_equals_meta_s_published_hashes(name):
    ours = frankly.vpdq(VPDQ / "videos" / f"{name}.mp4", frame_rate_timestamps=True)
    lines = [f"{f},{q},{h},{t:.3f}" for f, h, q, t in ours]
    assert lines == (VPDQ / "sample-hashes" / f"{name}.txt").read_text().split()


def test_perceptual_hashes_and_digests_match_the_library():
    path = PHOTOS[0]
    data = path.read_bytes()
    pixels = np.asarray(Image.open(path).convert("RGB"))
    for fn, bits in [(frankly.phash, 64), (frankly.dhash, 64), (frankly.ahash, 64), (frankly.blockhash, 256)]:
        from_file = fn(path)
        assert len(from_file) == bits // 4
        assert fn(data) == from_file == fn(pixels)
    import hashlib

    assert frankly.sha256(data) == hashlib.sha256(data).hexdigest() == frankly.sha256(path)
    assert frankly.md5(data) == hashlib.md5(data).hexdigest()


def brute_force(bank_bytes: np.ndarray, query_bytes: np.ndarray, radius: int):
    bank_bits = np.unpackbits(bank_bytes, axis=1)
    out = []
    for qi, q in enumerate(np.unpackbits(query_bytes, axis=1)):
        d = (bank_bits != q).sum(axis=1)
        hits = np.nonzero(d <= radius)[0]
        out.extend(sorted((qi, int(d[e]), int(e)) for e in hits))
    return out


def test_matching_equals_brute_force():
    rng = np.random.default_rng(17)
    entries = rng.integers(0, 256, size=(20_000, 32), dtype=np.uint8)
    bank = frankly.Bank([row.tobytes().hex() for row in entries], name="random")
    assert len(bank) == 20_000 and bank.signal == "pdq" and bank.threshold == 31
    # Queries: copies of entries with 0 to 40 bits flipped, and unrelated hashes.
    queries = entries[rng.integers(0, len(entries), size=300)].copy()
    bits = np.unpackbits(queries, axis=1)
    for row, flips in zip(bits, rng.integers(0, 41, size=len(bits))):
        row[rng.choice(256, size=flips, replace=False)] ^= 1
    queries = np.vstack([np.packbits(bits, axis=1), rng.integers(0, 256, size=(50, 32), dtype=np.uint8)])
    for radius in (0, 10, 31, 40):
        q, e, d = bank.query_many(queries, max_distance=radius)
        assert q.dtype == np.int64 and e.dtype == np.int64 and d.dtype == np.int32
        ours = list(zip(q.tolist(), d.tolist(), e.tolist()))
        assert ours == brute_force(entries, queries, radius), radius
    # The hex-list form and the single query agree with the array form.
    q, e, d = bank.query_many([row.tobytes().hex() for row in queries[:20]])
    assert list(zip(q.tolist(), d.tolist(), e.tolist())) == brute_force(entries, queries[:20], 31)
    first = bank.query(queries[0].tobytes().hex(), max_distance=40)
    assert [(m["distance"], m["index"]) for m in first] == [(d, e) for _, d, e in brute_force(entries, queries[:1], 40)]
    assert all(m["hash"] == entries[m["index"]].tobytes().hex() for m in first)


def test_hma_csv_import_and_labels():
    text = (
        "signal_type,signal_str,collab,category,tags\n"
        + "pdq," + "ab" * 32 + ",ncmec,csam,nudity\n"
        + "pdq,nothex,ncmec,csam,\n"
        + "video_md5," + "00" * 16 + ",ncmec,csam,\n"
    )
    bank = frankly.Bank.from_text(text, format="threatexchange")
    assert len(bank) == 1
    [match] = bank.query("ab" * 32)
    assert match["labels"] == ["csam", "nudity"] and match["distance"] == 0
    assert bank.skipped and "hex" in bank.skipped[0][1]


FRANKING = ROOT / "tests" / "vectors" / "franking"
REPORT_VECTORS = sorted(
    p for p in (FRANKING / "valid").glob("*.json") if json.loads(p.read_text()).get("kind") == "report"
) + sorted(p for p in (FRANKING / "invalid").glob("*.json") if json.loads(p.read_text()).get("kind") == "report")


def test_the_report_vectors_are_there():
    assert len([p for p in REPORT_VECTORS if p.parent.name == "valid"]) >= 10
    assert len([p for p in REPORT_VECTORS if p.parent.name == "invalid"]) >= 10


@pytest.mark.parametrize("path", REPORT_VECTORS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_report_vectors(path):
    v = json.loads(path.read_text())
    args = (bytes.fromhex(v["envelope"]), v["report_keys"], v["platform_keys"], v["reporter"], v["now_ms"])
    if v["expected"] != "valid":
        with pytest.raises(ValueError):
            frankly.open_and_verify(*args)
        return
    out = frankly.open_and_verify(*args)
    assert [x["verdict"] for x in out["verdicts"]] == [x.split(":")[0] for x in v["verdicts"]]
    assert all(("reason" in x) == (x["verdict"] == "rejected") for x in out["verdicts"])
    if "error" in v["order"]:
        assert "error" in out["order"]
    else:
        assert out["order"] == v["order"]
    assert out["report"]["reporter"] == v["reporter"]
    assert [m["commitment"] for m in v["messages"]] == [bytes(m["commitment"]).hex() if isinstance(m["commitment"], list) else m["commitment"] for m in out["report"]["messages"]]


def test_a_scan_verdict():
    photo = PHOTOS[0]
    hash_hex, _ = frankly.pdq(photo)
    bank = frankly.Bank([hash_hex], name="known-abuse")
    scanner = frankly.Scanner(
        str(ROOT / "policies" / "child.toml"), banks=[bank], models_dir=str(ROOT / "models")
    )
    verdict = scanner.scan(attachments=[(photo, "image/jpeg")], direction="outgoing")
    assert "block_send" in verdict["decision"]["actions"]
    assert [m["bank"] for m in verdict["signals"]["bank_matches"]] == ["known-abuse"]
    # The same bytes labelled as something else are still scanned (the label is the sender's).
    relabelled = scanner.scan(attachments=[(photo.read_bytes(), "application/pdf")], direction="outgoing")
    assert "block_send" in relabelled["decision"]["actions"]
    text = scanner.scan(text="see you tomorrow", direction="incoming")
    assert text["decision"]["actions"] == ["allow"]


def test_the_studies_return_their_tables():
    import frankly.eval

    rows = frankly.eval.robustness(CORPUS, transforms="jpeg:50,flip", algorithms="pdq,phash")
    assert [(r["algorithm"], r["transform"]) for r in rows] == [
        ("pdq", "jpeg:50"), ("pdq", "flip"), ("phash", "jpeg:50"), ("phash", "flip")
    ]
    assert all(r["queries"] == 58 for r in rows)
    by = {(r["algorithm"], r["transform"]): r for r in rows}
    # PDQ survives JPEG recompression and not a mirror flip (it is not flip-invariant).
    assert by[("pdq", "jpeg:50")]["recall_at_fpr"] > 0.9 > by[("pdq", "flip")]["recall_at_fpr"]
    fpr_rows = frankly.eval.fpr(CORPUS, algorithms="pdq")
    assert [r["threshold"] for r in fpr_rows] == list(range(257))
    assert all(r["pairs"] == fpr_rows[0]["pairs"] > 0 for r in fpr_rows)
    privacy = frankly.eval.privacy("see you at 5", PHOTOS[0])
    assert privacy and {"party", "flow", "learns", "bytes"} <= set(privacy[0])
    with pytest.raises(ValueError, match="(?i)transform"):
        frankly.eval.robustness(CORPUS, transforms="melt:9")


def test_bad_input_raises_value_error_with_the_library_s_message():
    jpeg = PHOTOS[0].read_bytes()
    with pytest.raises(ValueError, match="(?i)truncat|end"):
        frankly.pdq(jpeg[: len(jpeg) // 2])
    with pytest.raises(ValueError, match="not a supported image"):
        frankly.pdq(b"definitely not an image")
    with pytest.raises(ValueError, match="uint8"):
        frankly.pdq(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        frankly.pdq(np.zeros((10, 10, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        frankly_pdqhash.compute(np.zeros((10, 10, 3), dtype=np.int16))
    with pytest.raises(ValueError, match="hex digit"):
        frankly.Bank(["zz" * 32])
    with pytest.raises(ValueError, match="64 hex digits"):
        frankly.Bank(["ab"])
    with pytest.raises(ValueError, match="query 0: .*expected 32 bytes, found 31"):
        frankly.Bank(["ab" * 32]).query_many(np.zeros((2, 31), dtype=np.uint8))
    with pytest.raises(ValueError):
        frankly.Bank.from_bundle(b"FRANKLY" + bytes(100), "not a key")
    with pytest.raises(ValueError, match="(?i)policy|toml|format"):
        frankly.Scanner("this is not a policy")
    with pytest.raises(ValueError):
        frankly.pdq(12)
    with pytest.raises(ValueError, match="(?i)video|container|format"):
        frankly.vpdq(jpeg)
    # A PNG whose header claims 100,000 x 100,000 pixels (and whose header checksum is then wrong).
    big = io.BytesIO()
    Image.new("RGB", (1, 1)).save(big, format="PNG")
    png = bytearray(big.getvalue())
    png[16:24] = (100_000).to_bytes(4, "big") * 2
    with pytest.raises(ValueError):
        frankly.pdq(bytes(png))
