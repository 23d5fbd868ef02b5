//! Video (vPDQ) banks and `video_md5` end to end: the matcher against brute
//! force over every banked video, the file format against hostile bytes,
//! ThreatExchange CSV in and out, and signed bundles.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use frankly_bank::vpdq::{VpdqThresholds, match_brute, usable_features};
use frankly_bank::{
    Bank, BankError, BundleError, SignalType, TextFormat, VideoBank, VideoEntry, VideoMatcher, generate_key,
    sign_bundle, sign_video_bundle, verify_bundle, verify_video_bundle,
};
use frankly_hash::{PdqHash, VpdqFeature};

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn hash(&mut self) -> PdqHash {
        let mut h = [0u8; 32];
        for chunk in h.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        PdqHash(h)
    }
    fn flip(&mut self, mut h: PdqHash, bits: u32) -> PdqHash {
        for _ in 0..bits {
            let b = self.below(256) as usize;
            h.0[b / 8] ^= 1 << (b % 8);
        }
        h
    }
}

fn features(hashes: &[(PdqHash, u8)]) -> Vec<VpdqFeature> {
    hashes
        .iter()
        .enumerate()
        .map(|(i, &(hash, quality))| VpdqFeature { frame_number: i as u64, quality, hash, timestamp: i as f64 })
        .collect()
}

/// A video of a few scenes, each frame its scene's hash with a few bits
/// flipped (as consecutive frames of real video are), some frames of low
/// quality, some repeated exactly.
fn video(rng: &mut Rng, frames: usize) -> Vec<VpdqFeature> {
    let scenes: Vec<PdqHash> = (0..1 + rng.below(4)).map(|_| rng.hash()).collect();
    let mut out = Vec::new();
    for i in 0..frames {
        let scene = scenes[i * scenes.len() / frames];
        let hash = if rng.below(10) == 0 && !out.is_empty() {
            let (h, _): (PdqHash, u8) = out[out.len() - 1];
            h
        } else {
            let bits = rng.below(12) as u32;
            rng.flip(scene, bits)
        };
        let quality = if rng.below(12) == 0 { rng.below(50) as u8 } else { 50 + rng.below(51) as u8 };
        out.push((hash, quality));
    }
    features(&out)
}

/// A re-encode of `v`: every frame moved by up to `bits` bits.
fn perturbed(rng: &mut Rng, v: &[VpdqFeature], bits: u64) -> Vec<VpdqFeature> {
    v.iter()
        .map(|f| {
            let n = rng.below(bits + 1) as u32;
            VpdqFeature { hash: rng.flip(f.hash, n), ..*f }
        })
        .collect()
}

fn bank_of(name: &str, videos: &[Vec<VpdqFeature>]) -> VideoBank {
    let mut bank = VideoBank::new(name).unwrap();
    for (i, v) in videos.iter().enumerate() {
        let labels = BTreeSet::from([format!("label{}", i % 3)]);
        bank.add(VideoEntry { features: v.clone(), labels, source_id: Some(format!("video-{i}")) }).unwrap();
    }
    bank
}

#[test]
fn the_matcher_gives_the_brute_force_answer_over_every_banked_video() {
    let mut rng = Rng(0x5eed);
    let videos: Vec<Vec<VpdqFeature>> = (0..200)
        .map(|_| {
            let frames = 5 + rng.below(60) as usize;
            video(&mut rng, frames)
        })
        .collect();
    let bank = bank_of("known", &videos);
    let matcher = VideoMatcher::new(vec![bank.clone()]);
    let mut queries: Vec<Vec<VpdqFeature>> = Vec::new();
    for i in 0..40 {
        let v = &videos[(i * 7) % videos.len()];
        queries.push(perturbed(&mut rng, v, [0, 8, 20, 40][i % 4]));
        // A banked clip wrapped in other frames, and half of one.
        let other = video(&mut rng, 10 + i % 30);
        queries.push([v.clone(), other].concat());
        queries.push(v[..v.len().div_ceil(2)].to_vec());
    }
    queries.push(video(&mut rng, 40));
    queries.push(Vec::new());
    let rules = [
        VpdqThresholds::default(),
        VpdqThresholds { min_query_percent: 0.0, min_compared_percent: 80.0, ..Default::default() },
        VpdqThresholds { min_query_percent: 50.0, min_compared_percent: 50.0, ..Default::default() },
        VpdqThresholds { min_query_percent: 0.0, min_compared_percent: 0.0, ..Default::default() },
        VpdqThresholds { min_query_percent: 100.0, ..Default::default() },
        VpdqThresholds { distance: 10, min_query_percent: 30.0, ..Default::default() },
    ];
    let mut matches = 0;
    for rule in &rules {
        for q in &queries {
            let got = matcher.query_with(q, Some(rule));
            let mut want = Vec::new();
            for (v, entry) in bank.entries.iter().enumerate() {
                let m = match_brute(q, &entry.features, rule.quality, rule.distance);
                if m.is_match(rule) {
                    // The query frames within distance of a usable frame of the video.
                    let banked: Vec<_> = usable_features(&entry.features, rule.quality).map(|f| f.hash).collect();
                    let frames: Vec<u64> = usable_features(q, rule.quality)
                        .filter(|f| banked.iter().any(|b| b.distance(&f.hash) <= rule.distance))
                        .map(|f| f.frame_number)
                        .collect();
                    want.push((v, m.query_percent, m.compared_percent, frames));
                }
            }
            let mut got: Vec<_> =
                got.into_iter().map(|m| (m.video, m.query_percent, m.compared_percent, m.query_frames)).collect();
            got.sort_by_key(|m| m.0);
            assert_eq!(got, want, "rule {rule:?}");
            matches += want.len();
        }
    }
    // The data exercises the rule: many matches, not all.
    assert!(matches > 200, "{matches} matches");
}

#[test]
fn results_are_ordered_best_first_and_carry_the_entry() {
    let mut rng = Rng(7);
    let a = video(&mut rng, 30);
    let bank = bank_of("known", &[a.clone(), video(&mut rng, 30)]);
    let matcher = VideoMatcher::new(vec![bank]);
    let m = matcher.query(&a);
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].bank.as_str(), m[0].video, m[0].source_id.as_deref()), ("known", 0, Some("video-0")));
    assert_eq!((m[0].query_percent, m[0].compared_percent), (100.0, 100.0));
    assert_eq!(m[0].labels, ["label0"]);
}

#[test]
fn video_bank_files_round_trip_and_hostile_files_are_refused_with_a_reason() {
    let mut rng = Rng(11);
    let mut bank = bank_of("known", &[video(&mut rng, 20), video(&mut rng, 3)]);
    bank.thresholds.min_compared_percent = 12.5;
    let bytes = bank.to_bytes().unwrap();
    assert_eq!(VideoBank::from_bytes(&bytes).unwrap(), bank);
    // Any flipped byte: the checksum.
    for at in [10, bytes.len() / 2, bytes.len() - 33] {
        let mut bad = bytes.clone();
        bad[at] ^= 1;
        assert_eq!(VideoBank::from_bytes(&bad), Err(BankError::Checksum), "byte {at}");
    }
    // A hash bank is not a video bank, nor the reverse.
    assert_eq!(VideoBank::from_bytes(b"FRANKLYB..."), Err(BankError::NotABank));
    assert_eq!(Bank::from_bytes(&bytes), Err(BankError::NotABank));
    // A count claiming more than the file holds, with a valid checksum: refused
    // before allocating.
    let rechecksum = |mut body: Vec<u8>| {
        use sha2::Digest;
        let sum = sha2::Sha256::digest(&body);
        body.extend_from_slice(&sum);
        body
    };
    let body = bytes[..bytes.len() - 32].to_vec();
    // The video count sits after the header, the name and the label table.
    let count_at = 8 + 2 + 1 + 2 + 8 + 8 + 2 + "known".len() + 4 + (2 + 6) * 2;
    assert_eq!(u64::from_le_bytes(body[count_at..count_at + 8].try_into().unwrap()), 2);
    let mut huge = body.clone();
    huge[count_at..count_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = VideoBank::from_bytes(&rechecksum(huge)).unwrap_err();
    assert!(err.to_string().contains("too many entries"), "{err}");
    let mut many = body.clone();
    many[count_at..count_at + 8].copy_from_slice(&1_000_000u64.to_le_bytes());
    let err = VideoBank::from_bytes(&rechecksum(many)).unwrap_err();
    assert!(err.to_string().contains("videos claim"), "{err}");
    // Thresholds out of range.
    let mut bad = body.clone();
    bad[13..21].copy_from_slice(&f64::NAN.to_le_bytes());
    let err = VideoBank::from_bytes(&rechecksum(bad)).unwrap_err();
    assert!(err.to_string().contains("query percentage NaN is not 0 to 100"), "{err}");
    // Truncated.
    let err = VideoBank::from_bytes(&rechecksum(body[..body.len() - 5].to_vec())).unwrap_err();
    assert!(matches!(err, BankError::Malformed { .. }), "{err}");
}

#[test]
fn threatexchange_csv_feeds_pdq_video_md5_and_vpdq_banks_and_round_trips() {
    let mut rng = Rng(3);
    let clip = video(&mut rng, 4);
    let signal = frankly_hash::to_hma_signal(&clip);
    let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let quoted = signal.replace('"', "\"\"");
    let text = format!(
        "signal_type,signal_str,collab,category,tags\n\
         pdq,{pdq},Sample Data,ADVERSARIAL,known csam\n\
         video_md5,{md5},Sample Data,,tag1\n\
         vpdq,\"{quoted}\",Sample Data,ADVERSARIAL,clip\n\
         vpdq,\"[\"\"nope\"\"]\",Sample Data,,\n\
         pdq,abc,x,,\n"
    );
    let (bank, report) = Bank::import_text("p", SignalType::Pdq, TextFormat::ThreatExchange, &text, false).unwrap();
    assert_eq!(bank.len(), 1);
    assert_eq!(bank.entries[0].labels, BTreeSet::from(["ADVERSARIAL".into(), "csam".into(), "known".into()]));
    assert_eq!(bank.entries[0].source_id.as_deref(), Some("Sample Data"));
    assert_eq!(report.other_signal_types.get("vpdq"), Some(&2));
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].to_string().starts_with("line 6: not a pdq hash"), "{}", report.skipped[0]);

    let (md5s, _) = Bank::import_text("m", SignalType::VideoMd5, TextFormat::ThreatExchange, &text, false).unwrap();
    assert_eq!(md5s.len(), 1);
    assert_eq!(SignalType::VideoMd5.format_hash(&md5s.entries[0].hash), md5);
    // video_md5 is an exact match of the file's MD5.
    assert_eq!(SignalType::VideoMd5.hash_file(b""), Some(md5s.entries[0].hash));
    assert_eq!(md5s.threshold, 0);
    let back = Bank::from_bytes(&md5s.to_bytes().unwrap()).unwrap();
    assert_eq!(back, md5s);

    let (videos, report) = VideoBank::import_threatexchange("v", &text, false).unwrap();
    assert_eq!(videos.entries.len(), 1);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(report.skipped[0].to_string().starts_with("line 5: "), "{}", report.skipped[0]);
    assert_eq!(report.other_signal_types.get("pdq"), Some(&2));
    assert_eq!(videos.entries[0].labels, BTreeSet::from(["ADVERSARIAL".into(), "clip".into()]));
    let err = VideoBank::import_threatexchange("v", &text, true).unwrap_err();
    assert!(err.to_string().contains("strict import"), "{err}");

    // Out and in again.
    let exported = videos.export_threatexchange();
    let (again, _) = VideoBank::import_threatexchange("v", &exported, true).unwrap();
    assert_eq!(again.entries[0].labels, videos.entries[0].labels);
    let hashes = |b: &VideoBank| b.entries[0].features.iter().map(|f| (f.hash, f.quality)).collect::<Vec<_>>();
    assert_eq!(hashes(&again), hashes(&videos));
    let exported = bank.export_text(TextFormat::ThreatExchange);
    let (again, _) = Bank::import_text("p", SignalType::Pdq, TextFormat::ThreatExchange, &exported, true).unwrap();
    assert_eq!(again.entries, bank.entries);

    // Not a dataset CSV at all.
    let err = VideoBank::import_threatexchange("v", "hash,label\nabc,x\n", false).unwrap_err();
    assert!(err.to_string().contains("header must name signal_type and signal_str"), "{err}");
}

#[test]
fn video_bank_bundles_verify_only_as_video_banks() {
    let mut rng = Rng(5);
    let bank = bank_of("known", &[video(&mut rng, 10)]);
    let key = generate_key().unwrap();
    let (bundle, _) = sign_video_bundle(&bank, &key, 1, 1_000, 2_000).unwrap();
    let verified = verify_video_bundle(&bundle, &key.verifying_key(), 1_500, None).unwrap();
    assert_eq!(verified.bank(), &bank);
    // The same key signing a hash bank does not make a video bundle a bank bundle.
    // The refusal names what the bundle is.
    let err = verify_bundle(&bundle, &key.verifying_key(), 1_500, None).unwrap_err();
    assert_eq!(err, BundleError::WrongKind { expected: "bank", found: "video bank" });
    assert_eq!(err.to_string(), "this is a video bank bundle, not a bank bundle: load it as a video bank");
    let hashes = Bank::new("h", SignalType::Pdq).unwrap();
    let (bank_bundle, _) = sign_bundle(&hashes, &key, 1, 1_000, 2_000).unwrap();
    let err = verify_video_bundle(&bank_bundle, &key.verifying_key(), 1_500, None).unwrap_err();
    assert_eq!(err, BundleError::WrongKind { expected: "video bank", found: "bank" });
    // A bundle of its own kind under another key is a bad signature, as before.
    let other = generate_key().unwrap();
    let err = verify_video_bundle(&bundle, &other.verifying_key(), 1_500, None).unwrap_err();
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");
    // Another kind under another key is still named (only a prefix of the
    // unverified payload is looked at, and only for the message).
    let err = verify_bundle(&bundle, &other.verifying_key(), 1_500, None).unwrap_err();
    assert!(matches!(err, BundleError::WrongKind { .. }), "{err}");
    // Unsigned video bank files are refused by name.
    let err = verify_video_bundle(&bank.to_bytes().unwrap(), &key.verifying_key(), 1_500, None).unwrap_err();
    assert!(err.to_string().contains("unsigned video bank"), "{err}");
}
