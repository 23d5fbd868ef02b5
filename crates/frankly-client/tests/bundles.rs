//! Loading signed banks and policies on a device: only what verifies
//! reaches a scanner, and a bundle older than the one loaded before is
//! refused, after a restart too.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use frankly_bank::{Bank, BundleError, Entry, SignalType, SigningKey, sign_bundle};
use frankly_client::{ClientError, DeviceState, Reporter, Scanner};
use frankly_policy::{Audience, sign_policy};

const NOW: u64 = 1_750_000_000;

fn bank(entries: usize) -> Bank {
    let mut bank = Bank::new("demo", SignalType::Pdq).unwrap();
    for i in 0..entries {
        let mut hash = vec![0u8; 32];
        hash[0] = i as u8;
        bank.entries.push(Entry {
            hash: SignalType::Pdq.parse_hash(&hex::encode(&hash)).unwrap(),
            labels: BTreeSet::from(["csam".to_owned()]),
            source_id: None,
        });
    }
    bank
}

fn state() -> DeviceState {
    DeviceState::new(Reporter::new(&frankly_franking::Party::new("bob", "phone"), 1).unwrap())
}

fn rollback(loaded: u64, offered: u64) -> BundleError {
    BundleError::Rollback { loaded, offered }
}

#[test]
fn a_rolled_back_bank_is_refused_even_after_a_restart() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let pubkey = key.verifying_key();
    let sign = |entries, version| sign_bundle(&bank(entries), &key, version, NOW - 60, NOW + 3600).unwrap().0;
    let (v1, v2) = (sign(1, 1), sign(2, 2));
    let mut device = state();
    let loaded = device.verify_bank(&v2, &pubkey, NOW).unwrap();
    assert_eq!((loaded.bank().len(), loaded.info().version), (2, 2));
    assert_eq!(device.bundles["bank:demo"].version, 2);
    let err = device.verify_bank(&v1, &pubkey, NOW).unwrap_err();
    assert_eq!(err, ClientError::Bundle { what: "bank bundle `bank:demo`".into(), error: rollback(2, 1) });
    assert_eq!(
        err.to_string(),
        "refusing the bank bundle `bank:demo`: bundle version 1 is older than the loaded version 2: refusing a rollback"
    );
    // The refusal changed nothing; the same bundle again is fine.
    assert_eq!(device.bundles["bank:demo"].version, 2);
    device.verify_bank(&v2, &pubkey, NOW).unwrap();
    // The same version with other content is equivocation.
    let other_v2 = sign(3, 2);
    let err = device.verify_bank(&other_v2, &pubkey, NOW).unwrap_err();
    assert!(matches!(err, ClientError::Bundle { error: BundleError::Equivocation { version: 2 }, .. }), "{err}");
    // After a restart the loaded version is still known.
    let pickle_key = [7u8; 32];
    let mut restarted = DeviceState::unpickle(&device.pickle(&pickle_key).unwrap(), &pickle_key).unwrap();
    let err = restarted.verify_bank(&v1, &pubkey, NOW).unwrap_err();
    assert!(matches!(err, ClientError::Bundle { error: BundleError::Rollback { loaded: 2, offered: 1 }, .. }));
    // A newer one replaces it.
    restarted.verify_bank(&sign(4, 3), &pubkey, NOW).unwrap();
    assert_eq!(restarted.bundles["bank:demo"].version, 3);
}

#[test]
fn unsigned_or_foreign_banks_never_reach_the_state() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    let bundle = sign_bundle(&bank(1), &key, 5, NOW - 60, NOW + 3600).unwrap().0;
    let mut device = state();
    let err = device.verify_bank(&bundle, &other, NOW).unwrap_err();
    assert!(matches!(err, ClientError::Bundle { error: BundleError::BadSignature { .. }, .. }), "{err}");
    let err = device.verify_bank(&bank(1).to_bytes().unwrap(), &key.verifying_key(), NOW).unwrap_err();
    assert!(matches!(err, ClientError::Bundle { error: BundleError::Unsigned { .. }, .. }), "{err}");
    let err = device.verify_bank(&bundle, &key.verifying_key(), NOW + 7200).unwrap_err();
    assert!(matches!(err, ClientError::Bundle { error: BundleError::Expired { .. }, .. }), "{err}");
    assert!(device.bundles.is_empty());
}

#[test]
fn a_rolled_back_policy_is_refused_and_a_verified_one_builds_a_scanner() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let pubkey = key.verifying_key();
    let text = r#"format = "frankly-policy-v1"
name = "research"
description = "bank matches only"

[[rules]]
id = "log.bank"
description = "Any bank match"
direction = "both"
when.bank = {}
actions = ["log"]
"#;
    let sign = |version| sign_policy(text, &key, version, NOW - 60, NOW + 3600).unwrap().0;
    let mut device = state();
    let policy = device.verify_policy(&sign(4), &pubkey, NOW).unwrap();
    assert_eq!(device.bundles["policy:research"].version, 4);
    let err = device.verify_policy(&sign(3), &pubkey, NOW).unwrap_err();
    assert_eq!(err, ClientError::Bundle { what: "policy bundle `policy:research`".into(), error: rollback(4, 3) });
    // A bank and a policy of the same name are remembered apart.
    let bank_bundle = sign_bundle(&bank(1), &key, 1, NOW - 60, NOW + 3600).unwrap().0;
    let bank = device.verify_bank(&bank_bundle, &pubkey, NOW).unwrap();
    let scanner = Scanner::builder(policy, Audience::Adult).bank(bank).build().unwrap();
    assert_eq!(scanner.policy().name, "research");
    // An invalid policy inside a valid signature is refused as such.
    let bad =
        frankly_bundle::sign(&frankly_policy::POLICY_BUNDLE, b"format = 1", &key, 9, NOW - 60, NOW + 3600).unwrap().0;
    let err = device.verify_policy(&bad, &pubkey, NOW).unwrap_err();
    assert!(matches!(err, ClientError::Bundle { error: BundleError::Payload { kind: "policy", .. }, .. }), "{err}");
}
