//! open_nsfw on tract against onnxruntime's outputs (`models/reference/`).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};

use frankly_classify::{ClassifyError, ImageClassifier};
use serde_json::Value;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn reference() -> Vec<Value> {
    let text = std::fs::read_to_string(models().join("reference/open_nsfw.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let list = if v.is_array() { v.as_array().unwrap().clone() } else { v["images"].as_array().unwrap().clone() };
    list.into_iter().filter(|e| e.get("file").is_some()).collect()
}

fn classifier() -> ImageClassifier {
    ImageClassifier::load(&models().join("open_nsfw.toml")).unwrap()
}

#[test]
fn identical_tensors_give_onnxruntime_scores_within_1e_4() {
    let model = classifier();
    let refs = reference();
    let mut checked = 0;
    for entry in std::fs::read_dir(models().join("reference")).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("open_nsfw_input_"))
        else {
            continue;
        };
        let stem = stem.trim_end_matches(".f32");
        let bytes = std::fs::read(&path).unwrap();
        let tensor: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let want = refs.iter().find(|r| r["file"].as_str().unwrap().starts_with(stem)).unwrap();
        let got = model.run_tensor(tensor).unwrap();
        let (sfw, nsfw) = (want["scores"][0].as_f64().unwrap() as f32, want["scores"][1].as_f64().unwrap() as f32);
        println!("{stem}: tract {:?} onnxruntime [{sfw}, {nsfw}]", got.0);
        assert!((got.get("sfw").unwrap() - sfw).abs() <= 1e-4, "{stem}");
        assert!((got.get("nsfw").unwrap() - nsfw).abs() <= 1e-4, "{stem}");
        checked += 1;
    }
    assert!(checked >= 2, "reference tensors missing");
}

/// Every photo that has a reference (all 58 of `../shared/corpus`): the
/// input tensor is the reference preprocessing's to the byte (SHA-256 of the
/// float32 tensor), so the score is onnxruntime's within the model's own
/// tolerance, and at most 0.005 away (the bound) whatever happens.
#[test]
fn every_reference_photo_gives_the_reference_tensor_and_score() {
    use sha2::Digest;
    let model = classifier();
    let refs = reference();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    assert_eq!(refs.len(), 58, "models/reference/open_nsfw.json should cover the 58 shared photos");
    let (mut worst, mut worst_file, mut same_tensor) = (0f32, String::new(), 0);
    let mut failures = Vec::new();
    for r in &refs {
        let file = r["file"].as_str().unwrap();
        let bytes =
            std::fs::read(corpus.join(file)).unwrap_or_else(|e| panic!("{file}: {e} (../shared/corpus is needed)"));
        let image = frankly_hash::decode(&bytes, &frankly_hash::DecodeOptions::default()).unwrap().rgb;
        let tensor = model.preprocess(&image).unwrap();
        let raw: Vec<u8> = tensor.iter().flat_map(|v| v.to_le_bytes()).collect();
        let digest = hex::encode(sha2::Sha256::digest(&raw));
        if digest == r["input_sha256"].as_str().unwrap() {
            same_tensor += 1;
        } else {
            failures.push(format!("{file}: tensor differs from the reference preprocessing's"));
        }
        let got = model.run_tensor(tensor).unwrap().get("nsfw").unwrap();
        let want = r["scores"][1].as_f64().unwrap() as f32;
        let diff = (got - want).abs();
        if diff > 0.005 {
            failures.push(format!("{file}: nsfw {got:.6}, reference {want:.6}"));
        }
        if diff >= worst {
            (worst, worst_file) = (diff, file.to_string());
        }
    }
    println!("{same_tensor}/{} tensors identical; largest |nsfw - reference| {worst:.2e} ({worst_file})", refs.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_model_file_that_is_not_the_manifest_s_is_refused() {
    let dir = std::env::temp_dir().join(format!("frankly-classify-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("m")).unwrap();
    std::fs::write(dir.join("m/model.onnx"), b"not the model").unwrap();
    let manifest = std::fs::read_to_string(models().join("open_nsfw.toml"))
        .unwrap()
        .replace("open_nsfw/open-nsfw.onnx", "m/model.onnx");
    std::fs::write(dir.join("x.toml"), manifest).unwrap();
    let err = ImageClassifier::load(&dir.join("x.toml")).unwrap_err();
    assert!(matches!(err, ClassifyError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains("is not the one in its manifest"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_batch_scores_like_single_images() {
    let model = classifier();
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/photos");
    let images: Vec<_> = ["skimage_rocket.jpg", "skimage_coffee.png", "skimage_chelsea.png"]
        .iter()
        .map(|f| frankly_hash::decode(&std::fs::read(photos.join(f)).unwrap(), &Default::default()).unwrap().rgb)
        .collect();
    // A batch of 3 runs through the plans for 2 and 1.
    let tensors: Vec<f32> = images.iter().flat_map(|i| model.preprocess(i).unwrap()).collect();
    let batch = model.run_tensors(3, tensors).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(model.classify_batch(&images).unwrap().len(), 3);
    for (image, b) in images.iter().zip(&batch) {
        let one = model.classify(image).unwrap();
        for ((l1, s1), (l2, s2)) in one.scores.0.iter().zip(&b.scores.0) {
            assert_eq!(l1, l2);
            assert!((s1 - s2).abs() <= 1e-5, "{l1}: {s1} vs {s2}");
        }
    }
}

#[test]
fn threads_do_not_change_scores() {
    let single = classifier();
    let pooled = classifier().with_threads(2);
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/photos");
    for f in ["skimage_rocket.jpg", "skimage_coffee.png", "lomiri_Bridge_by_Sander_Klootwijk.jpg"] {
        let image = frankly_hash::decode(&std::fs::read(photos.join(f)).unwrap(), &Default::default()).unwrap().rgb;
        // Each output value is summed by one thread in the same order, so
        // the scores are equal, not merely close.
        assert_eq!(single.classify(&image).unwrap(), pooled.classify(&image).unwrap(), "{f}");
    }
}

#[test]
fn a_text_manifest_is_not_an_image_model() {
    let err = ImageClassifier::load(&models().join("profanity_check.toml")).unwrap_err();
    assert!(matches!(err, ClassifyError::WrongKind { expected: "images", .. }), "{err}");
}

/// A manifest is untrusted input: zero or absurd dimensions are refused
/// with the field named before any model is read or any buffer sized.
#[test]
fn image_manifests_with_zero_or_absurd_dimensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(models().join("open_nsfw.toml")).unwrap();
    let cases = [
        (base.replace("shape = [1, 224, 224, 3]", "shape = [1, 0, 224, 3]"), "must have positive dimensions"),
        (base.replace("shape = [1, 224, 224, 3]", "shape = [1, 224, 224, 0]"), "must have positive dimensions"),
        (base.replace("shape = [1, 224, 224, 3]", "shape = [0, 224, 224, 3]"), "must have positive dimensions"),
        (base.replace("shape = [1, 224, 224, 3]", "shape = [1, 100000, 224, 3]"), "must be 4 dimensions of 1 to 4096"),
        (base.replace("shape = [1, 224, 224, 3]", "shape = [1, 224, 224]"), "shape [1, 224, 224]"),
        (base.replace("width = 256, height = 256", "width = 0, height = 256"), "resize 0x256 must be at least 1x1"),
        (base.replace("width = 256, height = 256", "width = 256, height = 0"), "resize 256x0 must be at least 1x1"),
        (base.replace("width = 224, height = 224, mode", "width = 0, height = 0, mode"), "crop 0x0 must fit"),
    ];
    for (text, want) in cases {
        assert_ne!(text, base, "the case must change the manifest ({want})");
        std::fs::write(dir.path().join("m.toml"), &text).unwrap();
        let err = ImageClassifier::load(&dir.path().join("m.toml")).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
}
