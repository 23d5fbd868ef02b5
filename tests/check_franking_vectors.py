#!/usr/bin/env python3
"""Checks docs/franking-vectors.json with Python's own HMAC-SHA256 and an
independent encoder written from docs/franking.md: a second implementation of
the v1 encodings, so the vectors are not only what the Rust code prints."""

import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path

COMMIT_DOMAIN = b"frankly franking commitment v1\0"
TAG_DOMAIN = b"frankly franking platform tag v1\0"


def lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def encode_context(c: dict) -> bytes:
    out = lp(c["conversation_id"].encode()) + lp(c["sender_id"].encode()) + lp(c["message_id"].encode())
    out += struct.pack(">Q", c["sequence"])
    out += b"\x00" if c["previous"] is None else b"\x01" + bytes.fromhex(c["previous"])
    return out


def encode_tag(key_id: int, commitment: bytes, d: dict) -> bytes:
    return (struct.pack(">I", key_id) + commitment + lp(d["sender_id"].encode()) + lp(d["conversation_id"].encode())
            + struct.pack(">Q", d["timestamp_ms"]) + lp(d["server_message_id"].encode()))


def main() -> int:
    data = json.loads((Path(__file__).resolve().parent.parent / "docs/franking-vectors.json").read_text())
    failures = 0
    for v in data["vectors"]:
        context = encode_context(v["context"])
        commit_input = COMMIT_DOMAIN + context + bytes.fromhex(v["body"])
        commitment = hmac.new(bytes.fromhex(v["franking_key"]), commit_input, hashlib.sha256).digest()
        tag_input = TAG_DOMAIN + encode_tag(v["platform_key_id"], commitment, v["delivery"])
        tag = hmac.new(bytes.fromhex(v["platform_key"]), tag_input, hashlib.sha256).digest()
        checks = {
            "encoded_context": context.hex() == v["encoded_context"],
            "commitment_input": commit_input.hex() == v["commitment_input"],
            "commitment": commitment.hex() == v["commitment"],
            "tag_input": tag_input.hex() == v["tag_input"],
            "tag": tag.hex() == v["tag"],
        }
        bad = [k for k, ok in checks.items() if not ok]
        failures += bool(bad)
        print(f"{v['name']}: {'ok' if not bad else 'MISMATCH in ' + ', '.join(bad)}")
    passed = len(data["vectors"]) - failures
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
