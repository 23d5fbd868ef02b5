#!/usr/bin/env python3
"""Checks docs/report-vectors.json with an independent HPKE implementation
(PyPI `pyhpke`): the server key and the ephemeral key derived from their
IKMs (RFC 9180 DeriveKeyPair), the sealed ciphertext reproduced byte for
byte, and the ciphertext opened back to the report JSON.

Run: python3 tests/check_report_vectors.py  (installs pyhpke into a venv at
${FRANKLY_CHECK_VENV:-~/.cache/frankly/check-venv} on first use)."""

import json
import os
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("FRANKLY_CHECK_VENV") or Path.home() / ".cache/frankly/check-venv")
VECTORS = Path(__file__).resolve().parent.parent / "docs/report-vectors.json"


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin/python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([py, "-c", "import pyhpke"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "--quiet", "pyhpke==0.6.5"], check=True)
    os.execv(py, [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def main() -> int:
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId

    v = json.loads(VECTORS.read_text())
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)
    server = suite.kem.derive_key_pair(bytes.fromhex(v["server_ikm"]))
    ephemeral = suite.kem.derive_key_pair(bytes.fromhex(v["ephemeral_ikm"]))
    info, aad = bytes.fromhex(v["info"]), bytes.fromhex(v["header"])
    enc, sender = suite.create_sender_context(server.public_key, info=info, eks=ephemeral)
    ciphertext = sender.seal(v["report_json"].encode(), aad=aad)
    receiver = suite.create_recipient_context(bytes.fromhex(v["enc"]), server.private_key, info=info)
    opened = receiver.open(bytes.fromhex(v["ciphertext"]), aad=aad)
    checks = {
        "server public key": server.public_key.to_public_bytes().hex() == v["server_public_key"],
        "enc": enc.hex() == v["enc"],
        "ciphertext": ciphertext.hex() == v["ciphertext"],
        "opened report": opened.decode() == v["report_json"],
        "envelope = header || enc || ciphertext": v["envelope"] == v["header"] + v["enc"] + v["ciphertext"],
    }
    for name, ok in checks.items():
        print(f"{name}: {'ok' if ok else 'MISMATCH'}")
    failed = sum(not ok for ok in checks.values())
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    ensure_venv()
    sys.exit(main())
