//! Bank deltas: applying one gives exactly the full bundle's bank, a device
//! refuses one for another base, and one change to a 1M-entry bank costs
//! bytes, not megabytes.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeSet;

use frankly_bank::{
    Bank, BankDelta, DeltaError, Entry, SignalType, Words, apply_delta_bundle, generate_key, sign_bundle,
    sign_delta_bundle, verify_bundle,
};

/// SplitMix64: deterministic test hashes.
fn hashes(seed: u64, n: usize) -> Vec<Words> {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..n).map(|_| [next(), next(), next(), next()]).collect()
}

fn entry(hash: Words, label: &str) -> Entry {
    Entry { hash, labels: BTreeSet::from([label.to_owned()]), source_id: None }
}

fn bank(entries: Vec<Entry>) -> Bank {
    let mut b = Bank::new("CSAM-1", SignalType::Pdq).unwrap();
    b.entries = entries;
    b.canonicalize();
    b
}

const NOW: u64 = 1_800_000_000;

#[test]
fn a_delta_reproduces_the_full_bank_and_one_change_to_a_million_entries_is_small() {
    let base: Vec<Entry> = hashes(1, 1_000_000).into_iter().map(|h| entry(h, "csam")).collect();
    let old = bank(base.clone());
    let added = hashes(2, 1)[0];
    let mut new_entries = base;
    new_entries.push(entry(added, "csam"));
    let new = bank(new_entries);

    let key = generate_key().unwrap();
    let (full_old, _) = sign_bundle(&old, &key, 7, NOW, NOW + 86_400).unwrap();
    let (full_new, _) = sign_bundle(&new, &key, 8, NOW, NOW + 86_400).unwrap();
    let delta = BankDelta::for_hashes(&new, [added], 7, 8).unwrap();
    let (delta_bundle, _) = sign_delta_bundle(&delta, &key, NOW, NOW + 86_400).unwrap();
    println!(
        "1,000,000-entry PDQ bank, one entry added: full bundle {} bytes, delta bundle {} bytes",
        full_new.len(),
        delta_bundle.len()
    );
    assert!(full_new.len() > 32_000_000);
    assert!(delta_bundle.len() < 1024, "a delta of one entry is {} bytes", delta_bundle.len());

    let held = verify_bundle(&full_old, &key.verifying_key(), NOW, None).unwrap();
    let updated = apply_delta_bundle(&held, &delta_bundle, &key.verifying_key(), NOW).unwrap();
    let full = verify_bundle(&full_new, &key.verifying_key(), NOW, None).unwrap();
    assert_eq!(updated.bank(), full.bank());
    assert_eq!(updated.info().version, 8);

    // The same delta again: version 8 is not newer than the 8 now held.
    let again = apply_delta_bundle(&updated, &delta_bundle, &key.verifying_key(), NOW).unwrap_err();
    assert!(matches!(again, DeltaError::Bundle(_) | DeltaError::Mismatch(_)), "{again}");
}

#[test]
fn removals_and_label_changes_apply_and_a_wrong_base_is_refused() {
    let h = hashes(3, 10);
    let old = bank(h.iter().map(|x| entry(*x, "a")).collect());
    // Version 2: h[0] removed, h[1] relabelled, h[9] unchanged.
    let mut entries: Vec<Entry> = h[2..].iter().map(|x| entry(*x, "a")).collect();
    entries.push(entry(h[1], "b"));
    let new = bank(entries);
    let delta = BankDelta::for_hashes(&new, [h[0], h[1]], 1, 2).unwrap();
    assert_eq!(delta.removed, vec![h[0]]);
    assert_eq!(delta.upserted.entries.len(), 1);
    let parsed = BankDelta::from_bytes(&delta.to_bytes().unwrap()).unwrap();
    assert_eq!(parsed, delta);
    assert_eq!(parsed.apply(&old).unwrap(), new);

    // Another base (an entry the server never had): refused, not merged.
    let mut other = old.clone();
    other.entries.push(entry(hashes(4, 1)[0], "a"));
    other.canonicalize();
    assert_eq!(delta.apply(&other).unwrap_err(), DeltaError::ResultMismatch { from: 1, to: 2 });
    // Another bank.
    let mut renamed = old.clone();
    renamed.name = "OTHER".into();
    assert!(matches!(delta.apply(&renamed), Err(DeltaError::Mismatch(m)) if m.contains("OTHER")));

    // A delta from version 1 offered to a device holding version 2.
    let key = generate_key().unwrap();
    let (full, _) = sign_bundle(&new, &key, 2, NOW, NOW + 60).unwrap();
    let held = verify_bundle(&full, &key.verifying_key(), NOW, None).unwrap();
    let later = BankDelta::for_hashes(&new, [h[5]], 1, 3).unwrap();
    let (signed, _) = sign_delta_bundle(&later, &key, NOW, NOW + 60).unwrap();
    let e = apply_delta_bundle(&held, &signed, &key.verifying_key(), NOW).unwrap_err();
    assert!(matches!(&e, DeltaError::Mismatch(m) if m.contains("held is version 2")), "{e}");
    // Signed by another key.
    let stranger = generate_key().unwrap();
    let fine = BankDelta::for_hashes(&new, [h[5]], 2, 3).unwrap();
    let (forged, _) = sign_delta_bundle(&fine, &stranger, NOW, NOW + 60).unwrap();
    assert!(matches!(apply_delta_bundle(&held, &forged, &key.verifying_key(), NOW), Err(DeltaError::Bundle(_))));
    // A full bundle is not a delta.
    assert!(apply_delta_bundle(&held, &full, &key.verifying_key(), NOW).is_err());
}

#[test]
fn every_cut_or_flipped_byte_of_a_delta_is_an_error_not_a_panic() {
    let h = hashes(5, 4);
    let new = bank(h[1..].iter().map(|x| entry(*x, "a")).collect());
    let bytes = BankDelta::for_hashes(&new, [h[0], h[1]], 1, 2).unwrap().to_bytes().unwrap();
    for cut in 0..bytes.len() {
        assert!(BankDelta::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        assert!(BankDelta::from_bytes(&bad).is_err(), "flip at {at}");
    }
    // A removed count past the limit is refused before anything is read.
    let mut huge = bytes.clone();
    let at = 8 + 2 + 8 + 8 + 1 + 32;
    huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let body = huge.len() - 32;
    let sum: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&huge[..body]).into();
    huge[body..].copy_from_slice(&sum);
    assert!(matches!(BankDelta::from_bytes(&huge), Err(DeltaError::Malformed(m)) if m.contains("removed hashes")));
}
