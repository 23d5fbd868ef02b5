#!/usr/bin/env python3
"""Checks the franking v2 test vectors in tests/vectors/franking/{valid,invalid}/*.json
with an independent implementation written from docs/franking.md alone:
Python's own HMAC-SHA256 and SHA-256, a separate encoder/decoder for the
delivery, FMB1 and FRP2 encodings, Padmé padding, and PyPI `pyhpke` for the
HPKE envelope (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
ChaCha20-Poly1305).

Every valid vector is reproduced byte for byte (envelopes are re-sealed with
the vector's ephemeral key, commitments, tags and MACs recomputed, verdicts
and the order re-derived); every invalid vector must be refused, first, for
exactly the stated reason.

Run: python3 tests/check_franking_vectors.py [VECTOR_DIR]
(installs pyhpke into a venv at ${FRANKLY_CHECK_VENV:-~/.cache/frankly/check-venv}
on first use and re-executes itself inside it)."""

import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("FRANKLY_CHECK_VENV") or Path.home() / ".cache/frankly/check-venv")
DEFAULT_VECTORS = Path(__file__).resolve().parent / "vectors/franking"


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin/python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([py, "-c", "import pyhpke"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "--quiet", "pyhpke==0.6.5"], check=True)
    os.execv(py, [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


# ---------------------------------------------------------------------------
# Conventions: big-endian integers, lp(x) = u32(len(x)) || x, HMAC-SHA256 with
# 32-byte keys.
# ---------------------------------------------------------------------------

def u8(n: int) -> bytes:
    return struct.pack(">B", n)


def u16(n: int) -> bytes:
    return struct.pack(">H", n)


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def lp(b: bytes) -> bytes:
    return u32(len(b)) + b


def mac(key: bytes, data: bytes) -> bytes:
    # The spec fixes every HMAC key at exactly 32 bytes.
    if len(key) != 32:
        raise ValueError(f"HMAC key of {len(key)} bytes (the spec requires exactly 32)")
    return hmac.new(key, data, hashlib.sha256).digest()


def party(user_id: str, device_id: str) -> bytes:
    return lp(user_id.encode()) + lp(device_id.encode())


# Domains (each ends in NUL; lengths as the spec states them).
COMMIT_DOMAIN = b"frankly franking commitment v2\0"
TAG_DOMAIN = b"frankly franking platform tag v2\0"
MAC_DOMAIN = b"frankly delivery mac v2\0"
DEVICE_KEY_DOMAIN = b"frankly device key v2\0"
assert (len(COMMIT_DOMAIN), len(TAG_DOMAIN), len(MAC_DOMAIN)) == (31, 33, 24)

ENVELOPE_MAGIC = b"FRNKRPT\0"
ENVELOPE_VERSION = 2
HEADER_LEN = 14
ENC_LEN = 32
AEAD_TAG_LEN = 16
MAX_ENVELOPE = 32 * 1024 * 1024
ENVELOPE_INFO = b"frankly report envelope v2"

FUTURE_SKEW_MS = 5 * 60 * 1000  # "more than 5 minutes ahead of now"


class Malformed(Exception):
    """A decoding error (FMB1 or FRP2); its message says what was wrong."""


class Refused(Exception):
    """open_and_verify failed: `reason` is the vector's reason code, `check`
    the rejected verdict code when reason is reported-message."""

    def __init__(self, reason: str, detail: str = "", check: str | None = None):
        super().__init__(f"{reason}{f' ({check})' if check else ''}{f': {detail}' if detail else ''}")
        self.reason, self.check = reason, check


class Reader:
    """Bounds-checked cursor: reading beyond the input is a decoding error."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int, what: str = "field") -> bytes:
        if n > len(self.data) - self.pos:
            raise Malformed(f"{what}: {n} bytes needed, {len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str = "u8") -> int:
        return self.take(1, what)[0]

    def u16(self, what: str = "u16") -> int:
        return struct.unpack(">H", self.take(2, what))[0]

    def u32(self, what: str = "u32") -> int:
        return struct.unpack(">I", self.take(4, what))[0]

    def u64(self, what: str = "u64") -> int:
        return struct.unpack(">Q", self.take(8, what))[0]

    def lp(self, limit: int, what: str) -> bytes:
        n = self.u32(f"{what} length")
        if n > limit:
            raise Malformed(f"{what}: {n} bytes over the limit of {limit}")
        return self.take(n, what)

    def utf8(self, limit: int, what: str) -> str:
        return decode_utf8(self.lp(limit, what), what)

    def ident(self, what: str) -> str:
        return decode_id(self.lp(256, what), what)

    def party(self, what: str) -> tuple[str, str]:
        return (self.ident(f"{what} user_id"), self.ident(f"{what} device_id"))

    def end(self, what: str) -> None:
        if self.pos != len(self.data):
            raise Malformed(f"{what}: {len(self.data) - self.pos} trailing bytes")


def decode_utf8(b: bytes, what: str) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Malformed(f"{what}: invalid UTF-8 ({e})") from None


def decode_id(b: bytes, what: str) -> str:
    """Identifiers: UTF-8, 1 to 256 bytes, no code point in U+0000–U+001F or
    U+007F–U+009F ("invalid id")."""
    if not 1 <= len(b) <= 256:
        raise Malformed(f"{what}: invalid id (length {len(b)})")
    s = decode_utf8(b, what)
    if any(ord(ch) <= 0x1F or 0x7F <= ord(ch) <= 0x9F for ch in s):
        raise Malformed(f"{what}: invalid id (control character)")
    return s


# ---------------------------------------------------------------------------
# Encodings: commitment, delivery, tag, device key, delivery MAC.
# ---------------------------------------------------------------------------

def encode_delivery(d: dict) -> bytes:
    # delivery = lp(conversation_id) || u64(sequence) || party(sender)
    #            || party(recipient) || u64(timestamp_ms) || lp(server_message_id)
    return (lp(d["conversation_id"].encode()) + u64(d["sequence"]) + party(*d["sender"])
            + party(*d["recipient"]) + u64(d["timestamp_ms"]) + lp(d["server_message_id"].encode()))


def read_delivery(r: Reader) -> dict:
    return {
        "conversation_id": r.ident("delivery conversation_id"),
        "sequence": r.u64("delivery sequence"),
        "sender": r.party("delivery sender"),
        "recipient": r.party("delivery recipient"),
        "timestamp_ms": r.u64("delivery timestamp_ms"),
        "server_message_id": r.ident("delivery server_message_id"),
    }


def decode_delivery(b: bytes) -> dict:
    r = Reader(b)
    d = read_delivery(r)
    r.end("delivery")
    return d


def commit_input(conversation_id: str, sender: tuple[str, str], message_id: str, body: bytes) -> bytes:
    # context = lp(conversation_id) || party(sender) || lp(message_id)
    # commit_input = commit_domain || context || body   (body last, unprefixed)
    context = lp(conversation_id.encode()) + party(*sender) + lp(message_id.encode())
    return COMMIT_DOMAIN + context + body


def tag_input(key_id: int, c: bytes, delivery: bytes) -> bytes:
    # tag_input = tag_domain || u32(key_id) || c || delivery
    return TAG_DOMAIN + u32(key_id) + c + delivery


def device_key(master: bytes, user_id: str, device_id: str) -> bytes:
    # K_dev = HMAC(master, "frankly device key v2" 0x00 || party)
    return mac(master, DEVICE_KEY_DOMAIN + party(user_id, device_id))


def delivery_mac(k_dev: bytes, key_id: int, tag: bytes, c: bytes, delivery: bytes) -> bytes:
    # delivery_mac = HMAC(K_dev(recipient), mac_domain || u32(key_id) || tag || c || delivery)
    return mac(k_dev, MAC_DOMAIN + u32(key_id) + tag + c + delivery)


# ---------------------------------------------------------------------------
# FMB1 message bodies.
# ---------------------------------------------------------------------------

def parse_fmb1(body: bytes) -> dict:
    r = Reader(body)
    if r.take(4, "magic") != b"FMB1":
        raise Malformed("not FMB1")
    n = r.u32("text length")
    if n > 262_144:
        raise Malformed(f"text of {n} bytes (at most 262,144)")
    text = decode_utf8(r.take(n, "text"), "text")
    count = r.u16("attachment count")
    if count > 16:
        raise Malformed(f"{count} attachments (at most 16)")
    attachments = []
    for i in range(count):
        m = r.u8(f"attachment {i} media type length")
        if not 1 <= m <= 127:
            raise Malformed(f"attachment {i}: media type of {m} bytes (1 to 127)")
        media = r.take(m, f"attachment {i} media type")
        if any(not 0x21 <= ch <= 0x7E for ch in media) or b"/" not in media:
            raise Malformed(f"attachment {i}: invalid media type {media!r}")
        attachments.append({"media_type": media.decode("ascii"),
                            "reference": r.take(76, f"attachment {i} reference").hex()})
    r.end("FMB1 body")
    return {"text": text, "attachments": attachments}


# ---------------------------------------------------------------------------
# Reports: FRP2 encoding, Padmé padding, the HPKE envelope.
# ---------------------------------------------------------------------------

REASONS = range(1, 8)  # 1 child-safety ... 7 other


def decode_report(data: bytes) -> dict:
    r = Reader(data)
    if r.take(4, "magic") != b"FRP2":
        raise Malformed("not FRP2")
    report = {"report_id": r.take(16, "report_id"), "reporter": r.party("reporter")}
    report["reason"] = r.u8("reason")
    if report["reason"] not in REASONS:
        raise Malformed(f"reason code {report['reason']}")
    report["note"] = r.utf8(4096, "note")
    report["reported"] = r.u16("reported")
    n = r.u16("message count")
    if not 1 <= n <= 51:
        raise Malformed(f"{n} messages (1 to 51)")
    if report["reported"] >= n:
        raise Malformed(f"reported index {report['reported']} >= n = {n}")
    messages = []
    for i in range(n):
        msg = {"c": r.take(32, f"message {i} c"), "key_id": r.u32(f"message {i} key_id"),
               "tag": r.take(32, f"message {i} tag")}
        start = r.pos
        msg["delivery"] = read_delivery(r)
        msg["delivery_bytes"] = data[start:r.pos]
        flag = r.u8(f"message {i} flag")
        if flag == 0:
            msg["opening"] = None
        elif flag == 1:
            opening = {"k_f": r.take(32, f"message {i} k_f"),
                       "message_id": r.ident(f"message {i} message_id"),
                       "body": r.lp(1024 * 1024, f"message {i} body")}
            k = r.u8(f"message {i} attachment count")
            if k > 16:
                raise Malformed(f"message {i}: {k} attachments (at most 16)")
            opening["attachments"] = [
                {"reference": r.take(76, f"message {i} attachment {j} reference"),
                 "plaintext": r.lp(16 * 1024 * 1024, f"message {i} attachment {j} plaintext")}
                for j in range(k)]
            msg["opening"] = opening
        else:
            raise Malformed(f"message {i}: flag {flag}")
        messages.append(msg)
    report["messages"] = messages
    m = r.u16("evidence count")
    if m > 64:
        raise Malformed(f"{m} evidence items (at most 64)")
    report["evidence"] = [(r.utf8(256, f"evidence {j} kind"), r.utf8(4096, f"evidence {j} detail"))
                          for j in range(m)]
    r.end("FRP2 report")
    return report


def padme(length: int) -> int:
    # padme(L) = L if L < 2, else round L up to a multiple of 2^(E-S) with
    # E = floor(log2 L), S = floor(log2 E) + 1.
    if length < 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()  # floor(log2 E) + 1
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


def pad(report: bytes) -> bytes:
    # padded = u32(len(report)) || report || 0x00 × (padme(4 + len(report)) - 4 - len(report))
    return u32(len(report)) + report + bytes(padme(4 + len(report)) - 4 - len(report))


def unpad(padded: bytes) -> bytes:
    r = Reader(padded)
    n = r.u32("padded length prefix")
    report = r.take(n, "padded report")
    if len(padded) != padme(4 + n):
        raise Malformed(f"padded plaintext of {len(padded)} bytes, padme(4 + {n}) = {padme(4 + n)}")
    if any(padded[4 + n:]):
        raise Malformed("padding not all zero")
    return report


def hpke_suite():
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId
    return CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)


def envelope_header(report_key_id: int) -> bytes:
    # header = "FRNKRPT" 0x00 || u16(2) || u32(report_key_id)   (14 bytes)
    return ENVELOPE_MAGIC + u16(ENVELOPE_VERSION) + u32(report_key_id)


def seal_envelope(report: bytes, header: bytes, report_ikm: bytes, ephemeral_ikm: bytes) -> bytes:
    """envelope = header || enc || ciphertext, sealed to DeriveKeyPair(report_ikm)
    with the ephemeral key DeriveKeyPair(ephemeral_ikm), aad = header."""
    suite = hpke_suite()
    recipient = suite.kem.derive_key_pair(report_ikm)
    ephemeral = suite.kem.derive_key_pair(ephemeral_ikm)
    enc, ctx = suite.create_sender_context(recipient.public_key, info=ENVELOPE_INFO, eks=ephemeral)
    return header + enc + ctx.seal(pad(report), aad=header)


# ---------------------------------------------------------------------------
# Verification: open_and_verify(envelope, report_keys, keyring, reporter, now).
# ---------------------------------------------------------------------------

def open_envelope(envelope: bytes, report_keys: list[dict], now: int) -> tuple[int, bytes]:
    """Step 1: size, magic, version, report key id, HPKE open, padding and
    decoding. Returns (report_key_id, the unpadded FRP2 bytes)."""
    # Size: at least a header, an enc and an AEAD tag; at most 32 MiB.
    if not HEADER_LEN + ENC_LEN + AEAD_TAG_LEN <= len(envelope) <= MAX_ENVELOPE:
        raise Refused("not-an-envelope", f"{len(envelope)} bytes")
    header = envelope[:HEADER_LEN]
    if header[:8] != ENVELOPE_MAGIC:
        raise Refused("not-an-envelope", f"magic {header[:8].hex()}")
    version = struct.unpack(">H", header[8:10])[0]
    if version != ENVELOPE_VERSION:
        raise Refused("unsupported-version", f"version {version}")
    key_id = struct.unpack(">I", header[10:14])[0]
    # A rotated-out report key is kept until its open_until_ms: the envelope
    # is refused from then on, as with an unknown id.
    keys = [k for k in report_keys if k["id"] == key_id and now < k["open_until_ms"]]
    if not keys:
        raise Refused("unknown-report-key", f"report key id {key_id}")
    enc = envelope[HEADER_LEN:HEADER_LEN + ENC_LEN]
    ciphertext = envelope[HEADER_LEN + ENC_LEN:]
    suite = hpke_suite()
    try:
        sk = suite.kem.derive_key_pair(bytes.fromhex(keys[0]["ikm"])).private_key
        ctx = suite.create_recipient_context(enc, sk, info=ENVELOPE_INFO)
        padded = ctx.open(ciphertext, aad=header)
    except Exception as e:  # pyhpke raises OpenError, or others for a bad enc
        raise Refused("decrypt", f"{type(e).__name__}: {e}") from None
    try:
        return key_id, unpad(padded)
    except Malformed as e:
        raise Refused("malformed", str(e)) from None


def message_verdict(msg: dict, keyring: list[dict], reporter: tuple[str, str], now: int) -> str:
    """Step 3, for one message, checks in the spec's order."""
    d = msg["delivery"]
    # The tag verifies at `now`.
    keys = [k for k in keyring if k["id"] == msg["key_id"]]
    if not keys:
        return "rejected:unknown-key-id"
    key = keys[0]
    if now >= key["verify_until_ms"]:
        return "rejected:retention-ended"
    if not key["tag_from_ms"] <= d["timestamp_ms"] < key["tag_until_ms"]:
        return "rejected:key-not-valid-at"
    if d["timestamp_ms"] - now > FUTURE_SKEW_MS:
        return "rejected:future-timestamp"
    expected_tag = mac(bytes.fromhex(key["secret"]), tag_input(msg["key_id"], msg["c"], encode_delivery(d)))
    if not hmac.compare_digest(expected_tag, msg["tag"]):
        return "rejected:tag"
    # The copy's recipient is the reporter.
    if d["recipient"] != reporter:
        return "rejected:not-for-this-device"
    opening = msg["opening"]
    if opening is None:
        return "unopened"
    # c opens under the delivery's context with the opening's message_id.
    ci = commit_input(d["conversation_id"], d["sender"], opening["message_id"], opening["body"])
    if not hmac.compare_digest(mac(opening["k_f"], ci), msg["c"]):
        return "rejected:commitment"
    # Each attachment's reference occurs in the body and its plaintext hashes
    # to it (both checks per attachment, attachments in order).
    for att in opening["attachments"]:
        if att["reference"] not in opening["body"]:
            return "rejected:attachment-not-committed"
        if hashlib.sha256(att["plaintext"]).digest() != att["reference"][44:]:
            return "rejected:attachment-hash"
    return "verified"


def message_order(messages: list[dict], verdicts: list[str]) -> dict:
    """Step 5: over the messages that are not rejected, one conversation and
    one recipient, strictly increasing sequence; every skipped number a gap."""
    kept = [m["delivery"] for m, v in zip(messages, verdicts) if not v.startswith("rejected:")]
    if not kept:
        return {"error": "no-messages"}  # cannot happen once step 4 passed
    gaps = []
    for prev, cur in zip(kept, kept[1:]):
        if (cur["conversation_id"] != kept[0]["conversation_id"] or cur["recipient"] != kept[0]["recipient"]
                or cur["sequence"] <= prev["sequence"]):
            return {"error": "out-of-order"}
        if cur["sequence"] - prev["sequence"] > 1:
            gaps.append({"after": prev["sequence"], "before": cur["sequence"],
                         "missing": cur["sequence"] - prev["sequence"] - 1})
    return {"first": kept[0]["sequence"], "last": kept[-1]["sequence"], "gaps": gaps}


def open_and_verify(envelope: bytes, report_keys: list[dict], keyring: list[dict],
                    reporter: tuple[str, str], now: int) -> dict:
    # 1. size, magic, version, report key id, HPKE open, padding, decoding.
    key_id, plain = open_envelope(envelope, report_keys, now)
    try:
        report = decode_report(plain)
    except Malformed as e:
        raise Refused("malformed", str(e)) from None
    # 2. the report's reporter equals the authenticated device.
    if report["reporter"] != reporter:
        raise Refused("reporter-mismatch", f"{report['reporter']} != {reporter}")
    # 3. a verdict per message.
    verdicts = [message_verdict(m, keyring, reporter, now) for m in report["messages"]]
    # 4. the reported message must be verified.
    reported = verdicts[report["reported"]]
    if reported == "unopened":
        raise Refused("reported-unopened")
    if reported != "verified":
        code = reported.removeprefix("rejected:")
        raise Refused("reported-message", check=code)
    # 5. the order over the messages that are not rejected.
    order = message_order(report["messages"], verdicts)
    # 6. (replay) needs state across reports; a single vector has none.
    return {"report_key_id": key_id, "plain": plain, "report": report, "verdicts": verdicts, "order": order}


# ---------------------------------------------------------------------------
# Vector checks. Each returns a list of mismatch descriptions (empty = ok).
# ---------------------------------------------------------------------------

def reporter_of(v: dict) -> tuple[str, str]:
    return (v["reporter"]["user_id"], v["reporter"]["device_id"])


def check_report(v: dict) -> list[str]:
    envelope = bytes.fromhex(v["envelope"])
    if v["expected"] == "invalid":
        try:
            open_and_verify(envelope, v["report_keys"], v["platform_keys"], reporter_of(v), v["now_ms"])
        except Refused as e:
            bad = []
            if e.reason != v["reason"]:
                bad.append(f"refused as {e} but the vector says reason {v['reason']!r}")
            elif e.reason == "reported-message" and e.check != v.get("reported_check"):
                bad.append(f"reported message rejected with {e.check!r}, the vector says {v.get('reported_check')!r}")
            return bad
        return [f"verified, but the vector says it is refused with {v['reason']!r}"]

    bad = []
    report_bytes = bytes.fromhex(v["report"])
    # (a) reproduce the envelope byte for byte from the envelope's own header.
    header = envelope[:HEADER_LEN]
    key_id = struct.unpack(">I", header[10:14])[0] if len(header) == HEADER_LEN else None
    ikms = [k["ikm"] for k in v["report_keys"] if k["id"] == key_id]
    if header != envelope_header(key_id or 0) or not ikms:
        bad.append(f"envelope header {header.hex()} is not a v2 header to a listed report key")
    else:
        sealed = seal_envelope(report_bytes, header, bytes.fromhex(ikms[0]), bytes.fromhex(v["ephemeral_ikm"]))
        if sealed != envelope:
            bad.append("envelope: re-sealing the padded report does not reproduce it"
                       + (" (enc differs)" if sealed[:46] != envelope[:46] else " (ciphertext differs)"))
    # (b) open the envelope and run the whole verification.
    try:
        result = open_and_verify(envelope, v["report_keys"], v["platform_keys"], reporter_of(v), v["now_ms"])
    except Refused as e:
        return bad + [f"open_and_verify refused it: {e}"]
    if result["plain"] != report_bytes:
        bad.append("report: the opened, unpadded plaintext differs from the vector's report")
    # (c) recompute every commit_input, commitment, tag_input and tag.
    report = result["report"]
    if len(v["messages"]) != len(report["messages"]):
        bad.append(f"messages: {len(v['messages'])} in the vector, {len(report['messages'])} in the report")
    for i, (vm, msg) in enumerate(zip(v["messages"], report["messages"])):
        d, opening = msg["delivery"], msg["opening"]
        delivery = encode_delivery(d)
        if delivery != msg["delivery_bytes"]:
            bad.append(f"message {i}: delivery does not re-encode to its own bytes")
        if opening is None:
            if vm["commit_input"] is not None:
                bad.append(f"message {i}: unopened, but the vector has a commit_input")
        else:
            ci = commit_input(d["conversation_id"], d["sender"], opening["message_id"], opening["body"])
            if vm["commit_input"] != ci.hex():
                bad.append(f"message {i}: commit_input differs")
        # The vector's commitment and tag are the ones the message carries;
        # whether HMAC(k_f, commit_input) and HMAC(K_p, tag_input) reproduce
        # them is what the verdict computed in (d) decides.
        if vm["commitment"] != msg["c"].hex():
            bad.append(f"message {i}: commitment differs from the report's c")
        ti = tag_input(msg["key_id"], msg["c"], delivery)
        if vm["tag_input"] != ti.hex():
            bad.append(f"message {i}: tag_input differs")
        if vm["tag"] != msg["tag"].hex():
            bad.append(f"message {i}: tag differs from the report's tag")
    # (d) verdicts.
    if result["verdicts"] != v["verdicts"]:
        bad.append(f"verdicts: computed {result['verdicts']}, vector {v['verdicts']}")
    # (e) order.
    if result["order"] != v["order"]:
        bad.append(f"order: computed {result['order']}, vector {v['order']}")
    return bad


def check_fmb1(v: dict) -> list[str]:
    body = bytes.fromhex(v["body"])
    try:
        parsed = parse_fmb1(body)
    except Malformed as e:
        if v["expected"] == "invalid":
            return [] if v["reason"] == "malformed-body" else [f"refused, but the stated reason is {v['reason']!r}"]
        return [f"refused: {e}"]
    if v["expected"] == "invalid":
        return [f"parsed as {parsed}, but the vector says malformed-body"]
    bad = []
    if parsed["text"] != v["text"]:
        bad.append(f"text: parsed {parsed['text']!r}, vector {v['text']!r}")
    if parsed["attachments"] != v["attachments"]:
        bad.append(f"attachments: parsed {parsed['attachments']}, vector {v['attachments']}")
    return bad


def check_delivery_mac(v: dict) -> list[str]:
    bad = []
    k_dev = device_key(bytes.fromhex(v["device_master"]), v["device"]["user_id"], v["device"]["device_id"])
    if k_dev.hex() != v["device_key"]:
        bad.append("device_key differs from HMAC(master, device key domain || party)")
    delivery = bytes.fromhex(v["delivery"])
    try:
        decode_delivery(delivery)
    except Malformed as e:
        bad.append(f"delivery does not decode: {e}")
    expected = delivery_mac(k_dev, v["key_id"], bytes.fromhex(v["tag"]), bytes.fromhex(v["commitment"]), delivery)
    verifies = hmac.compare_digest(expected, bytes.fromhex(v["mac"]))
    if v["expected"] == "valid" and not verifies:
        bad.append("mac differs from the recomputed delivery MAC")
    if v["expected"] == "invalid":
        if verifies:
            bad.append("mac verifies, but the vector says it must not")
        if v.get("reason") != "delivery-mac":
            bad.append(f"stated reason {v.get('reason')!r}, expected 'delivery-mac'")
    return bad


def check_padme(v: dict) -> list[str]:
    bad = [f"padme({n}) = {padme(n)}, vector {p}" for n, p in v["sizes"] if padme(n) != p]
    if v["expected"] != "valid":
        bad.append("a padme vector can only be valid")
    return bad


KINDS = {"report": check_report, "fmb1": check_fmb1, "delivery-mac": check_delivery_mac, "padme": check_padme}


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_VECTORS
    files = [f for sub in ("valid", "invalid") if (root / sub).is_dir() for f in sorted((root / sub).glob("*.json"))]
    if not files:
        print(f"FAIL no vector files in {root}/{{valid,invalid}}/*.json")
        print("franking vectors: 0 valid reproduced, 0 invalid refused for the stated reason; no vectors is a failure")
        return 1
    counts = {"valid": 0, "invalid": 0}
    failed = 0
    for f in files:
        label = f"{f.parent.name}/{f.name}"
        try:
            v = json.loads(f.read_text())
            if v.get("expected") not in ("valid", "invalid"):
                bad = [f"unknown expected value {v.get('expected')!r}"]
            elif v["expected"] != f.parent.name:
                bad = [f"expected {v['expected']!r} but the file is under {f.parent.name}/"]
            elif v.get("kind") not in KINDS:
                bad = [f"unknown kind {v.get('kind')!r}"]
            else:
                bad = KINDS[v["kind"]](v)
        except Exception as e:  # a vector missing a field, bad hex, ...
            bad = [f"{type(e).__name__}: {e}"]
        if bad:
            failed += 1
            print(f"FAIL {label}: " + "; ".join(bad))
        else:
            counts[v["expected"]] += 1
            print(f"ok  {label}")
    summary = (f"franking vectors: {counts['valid']} valid reproduced, "
               f"{counts['invalid']} invalid refused for the stated reason")
    print(summary + (f"; {failed} FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    ensure_venv()
    sys.exit(main())
