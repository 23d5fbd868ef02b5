//! Text models: a tokenizer that reproduces scikit-learn's word analyzer
//! exactly, and a numeric graph (term counts in, probabilities out) run by
//! tract.
//!
//! Written here rather than taken from a tokenizer crate because the model
//! was trained on sklearn's `(?u)\b\w\w+\b` over `str.lower()`: the
//! definition of a word character must be Python's (`str.isalnum()` or `_`),
//! which differs from Rust's `char::is_alphanumeric` on combining marks.
//! The tokenizer file carries Python's word-character ranges, so the Rust
//! side needs no Unicode tables of its own.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::ClassifyError;
use crate::manifest::{Kind, Manifest};
use crate::model::{Model, Scores, read_pinned};

/// Largest tokenizer file read, in bytes.
pub const MAX_TOKENIZER_BYTES: u64 = 16 << 20;
/// Longest text classified, in bytes; longer messages are refused, not cut.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Texts run through the model at once by [`TextClassifier::classify_batch`].
/// One: with tract, batches of 8 or 64 cost more per message than single
/// messages (`bench/classify_vs_onnxruntime.py`, `docs/benchmarks.md`).
pub const TEXT_BATCH: usize = 1;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizerFile {
    format: String,
    #[allow(dead_code)]
    source: String,
    lowercase: bool,
    token_pattern: String,
    min_token_chars: usize,
    #[allow(dead_code)]
    word_chars_unicode_version: String,
    word_chars: Vec<[u32; 2]>,
    vocabulary: Vec<String>,
}

/// Splits text into vocabulary terms: lowercase (if the model was trained
/// so), maximal runs of word characters of at least `min_token_chars`
/// characters, counted per vocabulary column.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    lowercase: bool,
    min_chars: usize,
    word_chars: Vec<(u32, u32)>,
    columns: HashMap<String, u32>,
}

impl Tokenizer {
    /// Parses a `frankly-text-tokenizer-v1` file.
    pub fn from_json(bytes: &[u8]) -> Result<Tokenizer, String> {
        let file: TokenizerFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if file.format != "frankly-text-tokenizer-v1" {
            return Err(format!("format {:?} is not frankly-text-tokenizer-v1", file.format));
        }
        // The one analyzer this tokenizer implements; anything else would be
        // silently tokenized differently from the reference.
        if file.token_pattern != r"(?u)\b\w\w+\b" || file.min_token_chars != 2 {
            return Err(format!(
                "token pattern {:?} with min {} chars is not supported (only (?u)\\b\\w\\w+\\b)",
                file.token_pattern, file.min_token_chars
            ));
        }
        let mut last = None;
        for &[lo, hi] in &file.word_chars {
            if lo > hi || hi > 0x10FFFF || last.is_some_and(|l| lo <= l) {
                return Err("word_chars must be sorted, disjoint code-point ranges".into());
            }
            last = Some(hi);
        }
        if file.vocabulary.is_empty() || file.vocabulary.len() > 1 << 24 {
            return Err(format!("vocabulary of {} terms", file.vocabulary.len()));
        }
        let mut columns = HashMap::with_capacity(file.vocabulary.len());
        for (i, term) in file.vocabulary.into_iter().enumerate() {
            if let Some(first) = columns.insert(term, i as u32) {
                return Err(format!("vocabulary term at column {i} repeats column {first}"));
            }
        }
        Ok(Tokenizer {
            lowercase: file.lowercase,
            min_chars: file.min_token_chars,
            word_chars: file.word_chars.into_iter().map(|[lo, hi]| (lo, hi)).collect(),
            columns,
        })
    }

    /// Number of vocabulary columns.
    pub fn vocabulary_len(&self) -> usize {
        self.columns.len()
    }

    fn is_word_char(&self, c: char) -> bool {
        let c = c as u32;
        let i = self.word_chars.partition_point(|&(lo, _)| lo <= c);
        i > 0 && c <= self.word_chars[i - 1].1
    }

    /// The tokens of `text`, in order (including those not in the vocabulary).
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let text = if self.lowercase { text.to_lowercase() } else { text.to_owned() };
        let mut tokens = Vec::new();
        let mut current = String::new();
        let mut chars = 0;
        for c in text.chars().chain(std::iter::once(' ')) {
            if self.is_word_char(c) && c != ' ' {
                current.push(c);
                chars += 1;
            } else {
                if chars >= self.min_chars {
                    tokens.push(std::mem::take(&mut current));
                }
                current.clear();
                chars = 0;
            }
        }
        tokens
    }

    /// Term counts by vocabulary column.
    pub fn counts(&self, text: &str) -> BTreeMap<u32, u32> {
        let mut counts = BTreeMap::new();
        for token in self.tokens(text) {
            if let Some(&col) = self.columns.get(&token) {
                *counts.entry(col).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// A text classifier: tokenizer, manifest and the optimized tract plan of
/// its numeric graph, built once.
pub struct TextClassifier {
    model: Model,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for TextClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextClassifier").field("model", &self.model.manifest.name).finish_non_exhaustive()
    }
}

impl TextClassifier {
    /// Loads the model and tokenizer a manifest describes, refusing either
    /// file if its SHA-256 differs from the manifest's.
    pub fn load(manifest_path: &Path) -> Result<Self, ClassifyError> {
        let (manifest, dir) = Manifest::load(manifest_path)?;
        if manifest.kind != Kind::Text {
            return Err(ClassifyError::WrongKind { name: manifest.name.clone(), expected: "text" });
        }
        let spec = manifest.input.tokenizer.clone().ok_or_else(|| ClassifyError::Manifest {
            path: manifest_path.to_path_buf(),
            message: "no input.tokenizer".into(),
        })?;
        let bytes = read_pinned(&dir, &spec.file, &spec.sha256, MAX_TOKENIZER_BYTES)?;
        let tokenizer = Tokenizer::from_json(&bytes)
            .map_err(|message| ClassifyError::Manifest { path: dir.join(&spec.file), message })?;
        if tokenizer.vocabulary_len() != manifest.input.shape[1] {
            return Err(ClassifyError::Manifest {
                path: manifest_path.to_path_buf(),
                message: format!(
                    "the tokenizer has {} terms, the input shape {:?} wants {}",
                    tokenizer.vocabulary_len(),
                    manifest.input.shape,
                    manifest.input.shape[1]
                ),
            });
        }
        Ok(TextClassifier { model: Model::load(manifest, &dir)?, tokenizer })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.model.manifest
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Runs the model on term counts (column, count), one map per text.
    pub fn run_counts(&self, rows: &[BTreeMap<u32, u32>]) -> Result<Vec<Scores>, ClassifyError> {
        let width = self.tokenizer.vocabulary_len();
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(TEXT_BATCH) {
            let mut dense = vec![0f32; chunk.len() * width];
            for (r, counts) in chunk.iter().enumerate() {
                for (&col, &n) in counts {
                    let col = col as usize;
                    if col >= width {
                        return Err(self.model.error(format!("column {col} outside the vocabulary of {width}")));
                    }
                    dense[r * width + col] = n as f32;
                }
            }
            out.extend(self.run_dense(chunk.len(), dense)?);
        }
        Ok(out)
    }

    /// Runs the model on `batch` dense count rows laid out one after another.
    pub fn run_dense(&self, batch: usize, counts: Vec<f32>) -> Result<Vec<Scores>, ClassifyError> {
        let (shape, values) = self.model.run(batch, counts)?;
        self.model.score_rows(&shape, &values)
    }

    /// Classifies one message.
    pub fn classify(&self, text: &str) -> Result<Scores, ClassifyError> {
        let mut all = self.classify_batch(&[text])?;
        all.pop().ok_or_else(|| self.model.error("no output"))
    }

    /// Classifies messages in batches of up to [`TEXT_BATCH`] through
    /// the one plan.
    pub fn classify_batch(&self, texts: &[&str]) -> Result<Vec<Scores>, ClassifyError> {
        if let Some(long) = texts.iter().find(|t| t.len() > MAX_TEXT_BYTES) {
            return Err(ClassifyError::TextTooLong { bytes: long.len(), limit: MAX_TEXT_BYTES });
        }
        let counts: Vec<_> = texts.iter().map(|t| self.tokenizer.counts(t)).collect();
        self.run_counts(&counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascii_tokenizer(vocab: &[&str]) -> Tokenizer {
        let json = serde_json::json!({
            "format": "frankly-text-tokenizer-v1", "source": "test", "lowercase": true,
            "token_pattern": r"(?u)\b\w\w+\b", "min_token_chars": 2, "word_chars_unicode_version": "test",
            "word_chars": [[48, 57], [65, 90], [95, 95], [97, 122]], "vocabulary": vocab,
        });
        Tokenizer::from_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn tokens_are_maximal_runs_of_two_or_more_word_chars() {
        let t = ascii_tokenizer(&["ab"]);
        assert_eq!(t.tokens("A bc, d_e!! x9 -- Q"), ["bc", "d_e", "x9"]);
        assert_eq!(t.tokens(""), Vec::<String>::new());
        assert_eq!(t.counts("AB ab aB x ab"), BTreeMap::from([(0, 4)]));
    }

    #[test]
    fn malformed_tokenizer_files_are_refused() {
        let base = serde_json::json!({
            "format": "frankly-text-tokenizer-v1", "source": "t", "lowercase": true,
            "token_pattern": r"(?u)\b\w\w+\b", "min_token_chars": 2, "word_chars_unicode_version": "t",
            "word_chars": [[48, 57]], "vocabulary": ["a", "b"],
        });
        let with = |k: &str, v: serde_json::Value| {
            let mut j = base.clone();
            j[k] = v;
            Tokenizer::from_json(j.to_string().as_bytes()).unwrap_err()
        };
        assert!(with("format", "v2".into()).contains("format"));
        assert!(with("token_pattern", r"\w+".into()).contains("not supported"));
        assert!(with("word_chars", serde_json::json!([[60, 70], [65, 80]])).contains("disjoint"));
        assert!(with("vocabulary", serde_json::json!(["a", "a"])).contains("repeats"));
        assert!(with("vocabulary", serde_json::json!([])).contains("vocabulary"));
        assert!(Tokenizer::from_json(b"{").is_err());
    }
}
