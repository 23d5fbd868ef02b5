//! End-to-end checks of the studies on the repository's photos.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use frankly_eval::{
    AttackConfig, FprConfig, HashAlgo, RobustnessConfig, Transform, collide, collide_pdq, evade, list_images,
    load_image, prepare_attack_image, run_fpr, run_robustness,
};
use frankly_hash::{DecodeOptions, PdqHasher, RgbImage};

fn photos() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/photos")
}

fn small(name: &str, width: u32) -> RgbImage {
    let img = load_image(&photos().join(name), &DecodeOptions::default()).unwrap();
    let height = (u64::from(img.height()) * u64::from(width) / u64::from(img.width())) as u32;
    image::imageops::resize(&img, width, height, image::imageops::FilterType::Triangle)
}

#[test]
fn robustness_is_reproducible_and_sane() {
    let images = list_images(&photos()).unwrap();
    assert_eq!(images.len(), 6, "{images:?}");
    let config = RobustnessConfig {
        transforms: Transform::parse_list("jpeg:95,noise:0.1,flip").unwrap(),
        algos: vec![HashAlgo::Pdq, HashAlgo::PHash],
        seed: 3,
        ..RobustnessConfig::default()
    };
    let a = run_robustness(&images, &config, &|| {}).unwrap();
    let b = run_robustness(&images, &config, &|| {}).unwrap();
    assert!(a.failures.is_empty(), "{:?}", a.failures);
    assert_eq!(a.hashes, b.hashes);
    let other_seed = run_robustness(&images, &RobustnessConfig { seed: 4, ..config.clone() }, &|| {}).unwrap();
    // Noise depends on the seed, JPEG does not.
    assert_ne!(
        a.hashes.iter().map(|h| h.transformed[1].clone()).collect::<Vec<_>>(),
        other_seed.hashes.iter().map(|h| h.transformed[1].clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        a.hashes.iter().map(|h| h.transformed[0].clone()).collect::<Vec<_>>(),
        other_seed.hashes.iter().map(|h| h.transformed[0].clone()).collect::<Vec<_>>()
    );
    assert_eq!(a.cells.len(), 6);
    // JPEG at quality 95 barely moves PDQ: every copy is recovered.
    let jpeg = a.cell(HashAlgo::Pdq, 0).unwrap();
    assert_eq!(jpeg.queries.len(), 6);
    assert!(jpeg.queries.iter().all(|q| q.positive < q.nearest_negative), "{:?}", jpeg.queries);
    assert_eq!(jpeg.at_precision.unwrap().recall, 1.0);
    // Flipping defeats PDQ (without its dihedral hashes): copies land as far as other photos.
    let flip = a.cell(HashAlgo::Pdq, 2).unwrap();
    assert!(flip.positives.median().unwrap() > 64, "{:?}", flip.positives.median());
    // 6 queries x 5 other originals.
    assert_eq!(jpeg.negatives.total(), 30);
}

#[test]
fn fpr_counts_every_pair() {
    let images = list_images(&photos()).unwrap();
    let config = FprConfig {
        algos: vec![HashAlgo::Pdq, HashAlgo::AHash],
        decode: DecodeOptions::default(),
        bank_size: 1_000_000,
        images_per_account: 1000,
        target_account_rate: 1e-12,
        dedup: true,
    };
    let report = run_fpr(&images, &config, &|| {}).unwrap();
    assert!(report.duplicates.is_empty());
    let pdq_rows: Vec<_> = report.rows.iter().filter(|r| r.algo == HashAlgo::Pdq).collect();
    assert_eq!(pdq_rows.len(), 257);
    assert!(pdq_rows.iter().all(|r| r.pairs == 15));
    assert_eq!(pdq_rows[256].false_matches, 15);
    assert_eq!(report.deployments.len(), 2);
    // Six distinct photos: no PDQ pair within 31 bits, so the rate is the rule-of-three bound.
    let d = report.deployments[0];
    assert!(d.rate_is_bound);
    assert_eq!(d.rate, 3.0 / 15.0);
    assert!(d.account_threshold > 0);
}

#[test]
fn fpr_counts_a_picture_once_and_splits_pairs_by_source() {
    // Two sources; "b" holds a lossless re-encoding of one of "a"'s photos:
    // other bytes, the same pixels.
    let dir = tempfile::tempdir().unwrap();
    for s in ["a", "b"] {
        std::fs::create_dir(dir.path().join(s)).unwrap();
    }
    for name in ["skimage_chelsea.png", "skimage_coffee.png", "skimage_rocket.jpg"] {
        std::fs::copy(photos().join(name), dir.path().join("a").join(name)).unwrap();
    }
    let chelsea = load_image(&photos().join("skimage_chelsea.png"), &DecodeOptions::default()).unwrap();
    chelsea.save_with_format(dir.path().join("b/copy.bmp"), image::ImageFormat::Bmp).unwrap();
    let images = list_images(dir.path()).unwrap();
    let config = |dedup| FprConfig {
        algos: vec![HashAlgo::Pdq],
        decode: DecodeOptions::default(),
        bank_size: 1000,
        images_per_account: 100,
        target_account_rate: 1e-6,
        dedup,
    };

    let report = run_fpr(&images, &config(true), &|| {}).unwrap();
    assert_eq!(report.duplicates, [("b/copy.bmp".to_owned(), "a/skimage_chelsea.png".to_owned())]);
    assert_eq!(report.images.len(), 3);
    let rows: Vec<_> = report.sources.iter().map(|r| (r.source.clone(), r.images, r.pairs, r.matches)).collect();
    assert_eq!(rows, [(Some("a".to_owned()), 3, 3, 0), (None, 3, 0, 0)]);
    assert!(report.cross_source_deployments.is_empty(), "no cross-source pair to rate");

    let report = run_fpr(&images, &config(false), &|| {}).unwrap();
    assert!(report.duplicates.is_empty());
    let rows: Vec<_> = report.sources.iter().map(|r| (r.source.clone(), r.images, r.pairs, r.matches)).collect();
    assert_eq!(rows, [(Some("a".to_owned()), 3, 3, 0), (Some("b".to_owned()), 1, 0, 0), (None, 4, 3, 1)]);
    let cross = report.cross_source_deployments[0];
    assert_eq!((cross.rate, cross.rate_is_bound), (1.0 / 3.0, false));
}

#[test]
fn evade_breaks_the_pdq_match_with_little_visible_change() {
    let image = prepare_attack_image(&small("skimage_chelsea.png", 160));
    let config = AttackConfig { max_queries: 3000, min_psnr: 28.0, seed: 1, ..AttackConfig::new(HashAlgo::Pdq) };
    let outcome = evade(&image, &config).unwrap();
    assert!(outcome.success, "distance {} after {} queries", outcome.final_distance, outcome.queries);
    assert!(outcome.final_distance > 31);
    assert!(outcome.psnr >= 28.0, "{}", outcome.psnr);
    assert!(outcome.queries <= 3000);
    // The returned image really is that far from the original.
    let mut pdq = PdqHasher::new();
    let d = HashAlgo::Pdq.hash(&image, &mut pdq);
    let e = HashAlgo::Pdq.hash(&outcome.image, &mut pdq);
    assert_eq!(frankly_eval::distance(&d, &e), outcome.final_distance);
    assert_eq!(frankly_eval::psnr(&image, &outcome.image), Some(outcome.psnr));
}

#[test]
fn collide_moves_towards_the_target() {
    let image = small("skimage_chelsea.png", 128);
    let target_image = small("skimage_coffee.png", 128);
    let mut pdq = PdqHasher::new();
    let target = HashAlgo::Pdq.hash(&target_image, &mut pdq);
    let config = AttackConfig { max_queries: 400, min_psnr: 25.0, seed: 2, ..AttackConfig::new(HashAlgo::Pdq) };
    let outcome = collide(&image, &target, &config).unwrap();
    assert!(
        outcome.final_distance < outcome.start_distance,
        "{} -> {}",
        outcome.start_distance,
        outcome.final_distance
    );
    assert_eq!(frankly_eval::distance(&HashAlgo::Pdq.hash(&outcome.image, &mut pdq), &target), outcome.final_distance);
    assert!(outcome.psnr >= 25.0);
    assert!(outcome.queries <= 400);
}

#[test]
fn white_box_collide_reaches_the_pdq_threshold() {
    let image =
        prepare_attack_image(&load_image(&photos().join("skimage_rocket.jpg"), &DecodeOptions::default()).unwrap());
    let target_image = load_image(&photos().join("skimage_coffee.png"), &DecodeOptions::default()).unwrap();
    let mut pdq = PdqHasher::new();
    let target = HashAlgo::Pdq.hash(&target_image, &mut pdq);
    let config = AttackConfig { max_queries: 2000, ..AttackConfig::new(HashAlgo::Pdq) };
    let outcome = collide_pdq(&image, &target, &config).unwrap();
    assert!(outcome.start_distance > 100, "unrelated photos start far apart: {}", outcome.start_distance);
    assert!(outcome.success, "{} -> {} bits", outcome.start_distance, outcome.final_distance);
    // The real hash of the returned image, not the attack's model, is within the threshold.
    let reached = frankly_eval::distance(&HashAlgo::Pdq.hash(&outcome.image, &mut pdq), &target);
    assert_eq!(reached, outcome.final_distance);
    assert!(reached <= 31);
    assert_eq!(frankly_eval::psnr(&image, &outcome.image), Some(outcome.psnr));
    assert!(outcome.queries <= 2000);
    // It attacks PDQ only.
    let phash = AttackConfig::new(HashAlgo::PHash);
    assert!(collide_pdq(&image, &target, &phash).is_err());
}
