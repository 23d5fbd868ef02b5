//! The text model against scikit-learn: models/reference/profanity_check.json
//! holds, per sentence, sklearn's own term counts and the package's
//! `predict_prob`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use frankly_classify::{ClassifyError, MAX_TEXT_BYTES, TextClassifier};
use serde_json::Value;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

struct Case {
    text: String,
    counts: BTreeMap<u32, u32>,
    profanity: f32,
}

fn reference() -> Vec<Case> {
    let text = std::fs::read_to_string(models().join("reference/profanity_check.json")).unwrap();
    let v: Vec<Value> = serde_json::from_str(&text).unwrap();
    v.iter()
        .filter(|e| e.get("text").is_some())
        .map(|e| Case {
            text: e["text"].as_str().unwrap().to_owned(),
            counts: e["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_u64().unwrap() as u32))
                .collect(),
            profanity: e["profanity"].as_f64().unwrap() as f32,
        })
        .collect()
}

fn classifier() -> TextClassifier {
    TextClassifier::load(&models().join("profanity_check.toml")).unwrap()
}

#[test]
fn the_tokenizer_counts_exactly_what_sklearn_counts() {
    let model = classifier();
    let cases = reference();
    assert!(cases.len() >= 50);
    for case in &cases {
        assert_eq!(model.tokenizer().counts(&case.text), case.counts, "{:?}", case.text);
    }
}

#[test]
fn scores_equal_sklearn_within_1e_5() {
    let model = classifier();
    let cases = reference();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let got = model.classify_batch(&texts).unwrap();
    let mut worst = 0f32;
    for (case, scores) in cases.iter().zip(&got) {
        let p = scores.get("profanity").unwrap();
        let clean = scores.get("clean").unwrap();
        worst = worst.max((p - case.profanity).abs());
        assert!((p - case.profanity).abs() <= 1e-5, "{:?}: tract {p} sklearn {}", case.text, case.profanity);
        assert!((clean + p - 1.0).abs() <= 1e-6);
    }
    println!("largest difference from sklearn over {} sentences: {worst:e}", cases.len());
}

#[test]
fn a_batch_through_the_plan_equals_one_at_a_time() {
    let model = classifier();
    let cases = reference();
    let width = model.tokenizer().vocabulary_len();
    // 45 rows run through the plans for 32, 8, 4 and 1.
    let rows = &cases[..45];
    let mut dense = vec![0f32; rows.len() * width];
    for (r, case) in rows.iter().enumerate() {
        for (&col, &n) in &case.counts {
            dense[r * width + col as usize] = n as f32;
        }
    }
    let batch = model.run_dense(rows.len(), dense).unwrap();
    assert_eq!(batch.len(), rows.len());
    for (case, b) in rows.iter().zip(&batch) {
        let one = model.classify(&case.text).unwrap();
        assert!((one.get("profanity").unwrap() - b.get("profanity").unwrap()).abs() <= 1e-6, "{:?}", case.text);
    }
}

#[test]
fn a_text_over_the_limit_is_refused() {
    let model = classifier();
    let long = "a".repeat(MAX_TEXT_BYTES + 1);
    let err = model.classify(&long).unwrap_err();
    assert!(matches!(err, ClassifyError::TextTooLong { .. }), "{err}");
}

#[test]
fn a_tokenizer_that_is_not_the_manifest_s_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("profanity_check")).unwrap();
    for f in ["profanity_check.onnx", "tokenizer.json"] {
        std::fs::copy(models().join("profanity_check").join(f), dir.path().join("profanity_check").join(f)).unwrap();
    }
    std::fs::copy(models().join("profanity_check.toml"), dir.path().join("p.toml")).unwrap();
    assert!(TextClassifier::load(&dir.path().join("p.toml")).is_ok());
    let tok = dir.path().join("profanity_check/tokenizer.json");
    let edited = std::fs::read_to_string(&tok).unwrap().replacen("\"idiot\"", "\"idiom\"", 1);
    std::fs::write(&tok, edited).unwrap();
    let err = TextClassifier::load(&dir.path().join("p.toml")).unwrap_err();
    assert!(matches!(err, ClassifyError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn manifests_with_fields_of_the_wrong_kind_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(models().join("profanity_check.toml")).unwrap();
    let cases = [
        (base.replace("dtype = \"f32\"", "dtype = \"f32\"\nmean = [1.0, 2.0, 3.0]"), "input.mean applies to image"),
        (base.replace("shape = [1, 15442]", "shape = [1, 3, 15442]"), "must be [batch, vocabulary]"),
        (base.replace("tokenizer = {", "tokenizr = {"), "unknown field"),
        (base.replace("kind = \"text\"", "kind = \"image\""), "applies to text models"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("m.toml"), &text).unwrap();
        let err = TextClassifier::load(&dir.path().join("m.toml")).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
}
