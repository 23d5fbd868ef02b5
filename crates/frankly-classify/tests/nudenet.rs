//! The detector path against NudeNet 3.4.2 on onnxruntime
//! (models/reference/nudenet.json). NudeNet is AGPL-3.0 and not shipped, so
//! these tests need `python3 models/fetch_nudenet.py` first and run with
//! `cargo test -p frankly-classify --test nudenet -- --ignored` (CI does both).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};

use frankly_classify::ImageClassifier;
use serde_json::Value;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn reference() -> Vec<Value> {
    let text = std::fs::read_to_string(models().join("reference/nudenet.json")).unwrap();
    let v: Vec<Value> = serde_json::from_str(&text).unwrap();
    v.into_iter().filter(|e| e.get("file").is_some()).collect()
}

fn detector() -> ImageClassifier {
    ImageClassifier::load(&models().join("nudenet.toml"))
        .unwrap_or_else(|e| panic!("{e} (is models/nudenet/320n.onnx there? python3 models/fetch_nudenet.py)"))
}

#[test]
#[ignore = "needs the AGPL NudeNet model: python3 models/fetch_nudenet.py"]
fn identical_tensors_give_onnxruntime_detections_within_1e_4() {
    let model = detector();
    let (mut checked, mut worst) = (0, 0f32);
    for r in reference().iter().filter(|r| r.get("input_u8").is_some()) {
        let bytes = std::fs::read(models().join("reference").join(r["input_u8"].as_str().unwrap())).unwrap();
        // The reference tensor is exactly u8 * float32(1/255) (checked by the script).
        let tensor: Vec<f32> = bytes.iter().map(|&b| f32::from(b) * (1.0f32 / 255.0)).collect();
        let got = model.run_tensors(1, tensor).unwrap().pop().unwrap();
        for (label, want) in r["scores"].as_object().unwrap() {
            let (g, w) = (got.scores.get(label).unwrap(), want.as_f64().unwrap() as f32);
            assert!((g - w).abs() <= 1e-4, "{}: {label} tract {g} onnxruntime {w}", r["file"]);
            worst = worst.max((g - w).abs());
        }
        let labels: Vec<&str> = got.detections.iter().map(|d| d.label.as_str()).collect();
        let want: Vec<&str> =
            r["detections"].as_array().unwrap().iter().map(|d| d["class"].as_str().unwrap()).collect();
        assert_eq!(labels, want, "{}", r["file"]);
        checked += 1;
    }
    println!("identical tensors: largest label score difference {worst:e} over {checked} images");
    assert_eq!(checked, 2);
}

#[test]
#[ignore = "needs the AGPL NudeNet model: python3 models/fetch_nudenet.py"]
fn end_to_end_detections_are_close_to_the_reference() {
    let model = detector();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let (mut worst_score, mut worst_box, mut checked, mut same_labels) = (0f32, 0f32, 0, 0);
    for r in reference() {
        let file = r["file"].as_str().unwrap();
        let bytes = std::fs::read(corpus.join(file)).unwrap();
        let image = frankly_hash::decode(&bytes, &Default::default()).unwrap().rgb;
        let got = model.classify(&image).unwrap();
        for (label, want) in r["scores"].as_object().unwrap() {
            worst_score = worst_score.max((got.scores.get(label).unwrap() - want.as_f64().unwrap() as f32).abs());
        }
        let want = r["detections"].as_array().unwrap();
        if got.detections.len() == want.len()
            && got.detections.iter().zip(want).all(|(g, w)| g.label == w["class"].as_str().unwrap())
        {
            same_labels += 1;
            for (g, w) in got.detections.iter().zip(want) {
                for k in 0..4 {
                    // NudeNet truncates boxes to integers.
                    worst_box = worst_box.max((g.bbox[k].trunc() - w["box"][k].as_f64().unwrap() as f32).abs());
                }
            }
        } else {
            println!("{file}: frankly {:?} reference {want:?}", got.detections);
        }
        checked += 1;
    }
    println!(
        "{checked} photos: same detections on {same_labels}; largest label score difference {worst_score:.4}, \
         box difference {worst_box} px"
    );
    assert!(checked >= 50);
    assert!(same_labels + 2 >= checked, "detections differ on {} photos", checked - same_labels);
    assert!(worst_score <= 0.1, "label score difference {worst_score}");
}
