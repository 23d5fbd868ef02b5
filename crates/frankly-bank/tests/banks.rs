//! Banks end to end: text lists, binary files, signed bundles, matching.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use frankly_bank::{
    Bank, BankError, BundleError, HammingIndex, Loaded, Matcher, SignalType, TextFormat, brute_force, generate_key,
    parse_public_key, parse_signing_key, public_key_text, sign_bundle, signing_key_text, verify_bundle,
};
use proptest::prelude::*;

fn haystack_text() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors/pdq/threatexchange/pdq/data/reg-test-input/haystack.txt");
    std::fs::read_to_string(p).unwrap()
}

fn haystack() -> Bank {
    Bank::import_text("haystack", SignalType::Pdq, TextFormat::Hex, &haystack_text(), true).unwrap().0
}

#[test]
fn threatexchange_haystack_has_857_pairs_within_31() {
    let bank = haystack();
    assert_eq!(bank.len(), 1350);
    let hashes: Vec<_> = bank.entries.iter().map(|e| e.hash).collect();
    let index = HammingIndex::new(256, hashes.clone());
    let mut pairs = 0;
    for (i, h) in hashes.iter().enumerate() {
        let hits = index.range(h, 31);
        assert_eq!(hits, brute_force(&hashes, h, 31));
        pairs += hits.iter().filter(|hit| hit.id as usize > i).count();
    }
    assert_eq!(pairs, 857);
}

#[test]
fn csv_import_merges_duplicates_and_reports_bad_lines() {
    let a = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let b = "30a10efd71c83f429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af";
    let text =
        format!("hash,labels\n{a},csam,known\n\n# comment\n{b}\nnot-a-hash,x\n{},dup\n{a}g,bad\n", a.to_uppercase());
    let (bank, report) = Bank::import_text("t", SignalType::Pdq, TextFormat::Csv, &text, false).unwrap();
    assert_eq!(bank.len(), 2);
    assert_eq!(report.lines_read, 3);
    assert_eq!(report.duplicates_merged, 1);
    let labels: Vec<_> = bank.entries[0].labels.iter().map(String::as_str).collect();
    assert_eq!(labels, ["csam", "dup", "known"]);
    let skipped: Vec<String> = report.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        skipped,
        [
            "line 6: not a pdq hash: expected 64 hex digits, found 10",
            "line 8: not a pdq hash: expected 64 hex digits, found 65",
        ]
    );
    let err = Bank::import_text("t", SignalType::Pdq, TextFormat::Csv, &text, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 6: not a pdq hash: expected 64 hex digits, found 10 (strict import: nothing was imported)"
    );
    // Hex lists refuse labels rather than silently dropping them.
    let err = Bank::import_text("t", SignalType::Pdq, TextFormat::Hex, &format!("{a},x\n"), true).unwrap_err();
    assert!(matches!(err, BankError::InvalidLine(ref l) if l.line == 1), "{err}");
}

#[test]
fn entries_and_their_bytes_build_the_bank_the_text_import_builds() {
    let a = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let b = "30a10efd71c83f429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af";
    let text = format!("hash,labels\n{a},csam\n{b}\n{a},known\n");
    let (from_text, text_report) = Bank::import_text("t", SignalType::Pdq, TextFormat::Csv, &text, true).unwrap();
    let entries = [(a, "csam"), (b, ""), (a, "known")].map(|(hex, label)| frankly_bank::Entry {
        // Through the raw bytes of the hex form, as the Python binding passes numpy rows.
        hash: SignalType::Pdq.hash_from_bytes(&hex_bytes(hex)).unwrap(),
        labels: label.split(',').filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        source_id: None,
    });
    let (bank, report) = Bank::from_entries("t", SignalType::Pdq, entries).unwrap();
    assert_eq!(bank, from_text);
    assert_eq!((report.lines_read, report.duplicates_merged), (text_report.lines_read, text_report.duplicates_merged));
    let err = SignalType::Pdq.hash_from_bytes(&[0; 31]).unwrap_err();
    assert_eq!(err.to_string(), "not a pdq hash: expected 32 bytes, found 31");
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn every_format_round_trips() {
    let (mut bank, _) = Bank::import_text(
        "labelled",
        SignalType::Pdq,
        TextFormat::Csv,
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,a,b\n30a10efd71c83f429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af\n",
        true,
    )
    .unwrap();
    bank.entries[1].source_id = Some("te:12345".into());
    bank.threshold = 20;
    let bytes = bank.to_bytes().unwrap();
    assert_eq!(Bank::from_bytes(&bytes).unwrap(), bank);

    let csv = bank.export_text(TextFormat::Csv);
    let (again, _) = Bank::import_text("labelled", SignalType::Pdq, TextFormat::Csv, &csv, true).unwrap();
    assert_eq!(
        again.entries.iter().map(|e| (&e.hash, &e.labels)).collect::<Vec<_>>(),
        bank.entries.iter().map(|e| (&e.hash, &e.labels)).collect::<Vec<_>>()
    );

    let hay = haystack();
    let hex = hay.export_text(TextFormat::Hex);
    assert_eq!(hex, haystack_text().lines().map(|l| format!("{}\n", l.trim())).collect::<String>());
    assert_eq!(Bank::from_bytes(&hay.to_bytes().unwrap()).unwrap(), hay);

    for signal in [SignalType::Phash, SignalType::Blockhash] {
        let digits = (signal.bits() / 4) as usize;
        let text: String = (0..50u64)
            .map(|i| format!("{:0>w$x}\n", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (1 << 60), w = digits))
            .collect();
        let (b, _) = Bank::import_text("x", signal, TextFormat::Hex, &text, true).unwrap();
        assert_eq!(b.export_text(TextFormat::Hex), text);
        assert_eq!(Bank::from_bytes(&b.to_bytes().unwrap()).unwrap(), b);
    }
}

#[test]
fn binary_parse_errors_are_clear_and_never_panic() {
    let bytes = haystack().to_bytes().unwrap();
    assert_eq!(Bank::from_bytes(b"FRANKLYX....").unwrap_err(), BankError::NotABank);
    let mut v2 = bytes.clone();
    v2[8] = 2;
    assert_eq!(Bank::from_bytes(&v2).unwrap_err(), BankError::UnsupportedVersion(2));
    let mut flipped = bytes.clone();
    flipped[100] ^= 1;
    assert_eq!(Bank::from_bytes(&flipped).unwrap_err(), BankError::Checksum);
    for len in 0..200 {
        assert!(Bank::from_bytes(&bytes[..len]).is_err());
    }
    for len in (200..bytes.len()).step_by(97) {
        assert!(Bank::from_bytes(&bytes[..len]).is_err());
    }
    // A well-formed header (valid checksum) that claims far more entries than
    // the bytes hold is refused before anything is allocated for them.
    let mut lying = b"FRANKLYB\x01\x00\x01\x32\x1f\x00\x01\x00x\x00\x00\x00\x00".to_vec();
    lying.extend_from_slice(&40_000_000u64.to_le_bytes());
    use sha2::Digest;
    let sum = sha2::Sha256::digest(&lying);
    lying.extend_from_slice(&sum);
    let err = Bank::from_bytes(&lying).unwrap_err();
    assert!(err.to_string().contains("entries claim 1440000000 bytes, only 0 remain"), "{err}");
}

fn signed(version: u64, created: u64, expires: u64) -> (Vec<u8>, frankly_bank::VerifyingKey, [u8; 32]) {
    let key = generate_key().unwrap();
    let (bytes, info) = sign_bundle(&haystack(), &key, version, created, expires).unwrap();
    (bytes, key.verifying_key(), info.digest)
}

#[test]
fn bundles_verify_and_refuse_each_failure_with_its_own_error() {
    let now = 1_800_000_000;
    let (bytes, key, digest) = signed(7, now - 10, now + 86_400);
    let ok = verify_bundle(&bytes, &key, now, None).unwrap();
    assert_eq!(ok.bank().len(), 1350);
    assert_eq!(ok.info().version, 7);
    assert_eq!(ok.info().digest, digest);

    // Unsigned: a plain bank file.
    let bank = haystack().to_bytes().unwrap();
    assert!(matches!(verify_bundle(&bank, &key, now, None), Err(BundleError::Unsigned { kind: "bank", .. })));
    // Tampered: any single flipped byte is refused.
    for at in (0..bytes.len()).step_by(bytes.len() / 150) {
        let mut t = bytes.clone();
        t[at] ^= 0x20;
        assert!(verify_bundle(&t, &key, now, None).is_err(), "flip at {at} accepted");
    }
    let mut t = bytes.clone();
    t[500] ^= 1;
    assert!(matches!(verify_bundle(&t, &key, now, None), Err(BundleError::BadSignature { .. })));
    // Wrong key.
    let other = generate_key().unwrap().verifying_key();
    assert!(matches!(verify_bundle(&bytes, &other, now, None), Err(BundleError::BadSignature { .. })));
    // Expired, and not yet valid.
    assert_eq!(
        verify_bundle(&bytes, &key, now + 86_400, None).unwrap_err(),
        BundleError::Expired { expires: now + 86_400, now: now + 86_400 }
    );
    assert!(matches!(verify_bundle(&bytes, &key, now - 3600, None), Err(BundleError::NotYetValid { .. })));
    // Rollback and equivocation.
    let loaded = Loaded { version: 8, digest: [0; 32] };
    assert_eq!(
        verify_bundle(&bytes, &key, now, Some(&loaded)).unwrap_err(),
        BundleError::Rollback { loaded: 8, offered: 7 }
    );
    let same = Loaded { version: 7, digest: [0; 32] };
    assert_eq!(verify_bundle(&bytes, &key, now, Some(&same)).unwrap_err(), BundleError::Equivocation { version: 7 });
    let reload = Loaded { version: 7, digest };
    assert!(verify_bundle(&bytes, &key, now, Some(&reload)).is_ok());
    // Truncations are malformed, not panics.
    for len in [0, 7, 8, 20, 41, 42, 100, bytes.len() - 1] {
        assert!(verify_bundle(&bytes[..len], &key, now, None).is_err());
    }
}

#[test]
fn key_files_round_trip() {
    let key = generate_key().unwrap();
    let text = signing_key_text(&key);
    assert!(text.starts_with("frankly-signing-key-v1:"));
    assert_eq!(parse_signing_key(&text).unwrap().to_bytes(), key.to_bytes());
    let public = public_key_text(&key.verifying_key());
    assert_eq!(parse_public_key(&public).unwrap(), key.verifying_key());
    assert!(parse_public_key(&text).is_err(), "a secret key is not a public key");
    assert!(parse_signing_key(&public).is_err());
}

#[test]
fn matcher_reports_banks_labels_and_distances_in_order() {
    let (a, _) = Bank::import_text(
        "a",
        SignalType::Pdq,
        TextFormat::Csv,
        &haystack_text().lines().take(20).map(|l| format!("{l},first\n")).collect::<String>(),
        true,
    )
    .unwrap();
    let mut b = haystack();
    b.name = "b".into();
    let query = a.entries[3].hash;
    let matcher = Matcher::new(vec![a, b]);
    let matches = matcher.query(SignalType::Pdq, &query, Some(100), None);
    assert!(matches.windows(2).all(|w| w[0].distance <= w[1].distance));
    assert_eq!(matches[0].distance, 0);
    assert!(matches.iter().any(|m| m.bank == "a" && m.labels == ["first"]));
    assert!(matches.iter().any(|m| m.bank == "b" && m.distance == 0));
    assert!(matches.iter().all(|m| m.distance <= 31));
    // Under the quality floor, nothing matches.
    assert!(matcher.query(SignalType::Pdq, &query, Some(49), None).is_empty());
    // Other signal types never match PDQ banks.
    assert!(matcher.query(SignalType::Phash, &query, None, None).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The index equals brute force on random banks, queries and radii,
    /// including queries planted near entries.
    #[test]
    fn index_equals_brute_force(
        seed in any::<u64>(),
        n in 1usize..2500,
        bits in prop::sample::select(vec![64u32, 256]),
        radius in 0u32..=64,
        flips in 0u32..40,
    ) {
        let mut s = seed | 1;
        let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        let mask = |w: [u64; 4]| if bits == 64 { [w[0], 0, 0, 0] } else { w };
        let hashes: Vec<[u64; 4]> = (0..n).map(|_| mask([next(), next(), next(), next()])).collect();
        let index = HammingIndex::new(bits, hashes.clone());
        let mut query = hashes[(next() % n as u64) as usize];
        for _ in 0..flips {
            let k = next() % u64::from(bits);
            query[(k / 64) as usize] ^= 1 << (k % 64);
        }
        prop_assert_eq!(index.range(&query, radius), brute_force(&hashes, &query, radius));
    }
}
