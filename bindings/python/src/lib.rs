//! The extension module `frankly._native` of the Python package `frankly`.
//!
//! Thin over the library crates: each function converts its arguments,
//! calls one library function and converts the result back. Input
//! adaptation (paths, PIL images) is in `python/frankly/__init__.py`; every
//! library error becomes a `ValueError` carrying the library's message.
//!
//! The GIL is released wherever the work runs on data Rust owns or that
//! Python cannot change (`bytes`): decoding, hashing file bytes, index
//! searches, scans. Hashing a numpy array keeps the GIL, so that no other
//! Python thread writes to the array while Rust reads it, and needs no copy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use frankly_bank::index::{HammingIndex, Words};
use frankly_bank::{Bank as LibBank, Entry, SignalType, TextFormat};
use frankly_client::{Attachment, Message, Scanner as LibScanner, trust_local_bank, trust_local_policy};
use frankly_hash::{DecodeOptions, PdqHasher, Perceptual, RgbImage};
use frankly_policy::{Audience, Direction, Facts};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Decodes image file bytes within frankly's default limits (JPEG through
/// libjpeg-turbo, as Pillow does).
fn decode(bytes: &[u8]) -> PyResult<RgbImage> {
    frankly_hash::decode(bytes, &DecodeOptions::default()).map(|d| d.rgb).map_err(value_error)
}

/// Pixels of a numpy `uint8` array of shape `(height, width, 3)`: borrowed
/// when C-contiguous, else copied.
fn pixels<'a>(array: &'a PyReadonlyArray3<'_, u8>) -> PyResult<(u32, u32, std::borrow::Cow<'a, [u8]>)> {
    let shape = array.shape();
    if shape[2] != 3 {
        return Err(PyValueError::new_err(format!(
            "expected an RGB array of shape (height, width, 3), got shape {shape:?}"
        )));
    }
    let dimension = |n: usize, what: &str| {
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= frankly_hash::MAX_DIMENSION)
            .ok_or_else(|| PyValueError::new_err(format!("{what} {n} exceeds {}", frankly_hash::MAX_DIMENSION)))
    };
    let (height, width) = (dimension(shape[0], "height")?, dimension(shape[1], "width")?);
    let bytes = match array.as_slice() {
        Ok(slice) => std::borrow::Cow::Borrowed(slice),
        Err(_) => std::borrow::Cow::Owned(array.as_array().iter().copied().collect()),
    };
    Ok((width, height, bytes))
}

fn rgb_image(array: &PyReadonlyArray3<'_, u8>) -> PyResult<RgbImage> {
    let (width, height, bytes) = pixels(array)?;
    RgbImage::from_raw(width, height, bytes.into_owned())
        .ok_or_else(|| PyValueError::new_err("the array's size does not match its shape"))
}

/// PDQ `(hash_hex, quality)` of image file bytes.
#[pyfunction]
fn pdq_bytes(py: Python<'_>, data: &[u8]) -> PyResult<(String, u8)> {
    py.detach(|| {
        let image = decode(data)?;
        let out = PdqHasher::new().hash(&image);
        Ok((out.hash.to_string(), out.quality))
    })
}

/// PDQ `(hash_hex, quality)` of an RGB array.
#[pyfunction]
fn pdq_array(array: PyReadonlyArray3<'_, u8>) -> PyResult<(String, u8)> {
    let (width, height, bytes) = pixels(&array)?;
    let out = PdqHasher::new().hash_rgb8(width, height, &bytes).map_err(value_error)?;
    Ok((out.hash.to_string(), out.quality))
}

fn dihedral_out(d: &frankly_hash::PdqDihedral) -> (Vec<String>, u8) {
    (d.hashes.iter().map(ToString::to_string).collect(), d.quality)
}

/// The eight dihedral PDQ hashes (original, rotations by 90, 180 and 270
/// degrees, flips about X, Y, the main and the anti diagonal) and the
/// quality, of image file bytes.
#[pyfunction]
fn pdq_dihedral_bytes(py: Python<'_>, data: &[u8]) -> PyResult<(Vec<String>, u8)> {
    py.detach(|| Ok(dihedral_out(&PdqHasher::new().hash_dihedral(&decode(data)?))))
}

/// [`pdq_dihedral_bytes`] of an RGB array.
#[pyfunction]
fn pdq_dihedral_array(array: PyReadonlyArray3<'_, u8>) -> PyResult<(Vec<String>, u8)> {
    let (width, height, bytes) = pixels(&array)?;
    PdqHasher::new().hash_dihedral_rgb8(width, height, &bytes).map(|d| dihedral_out(&d)).map_err(value_error)
}

fn perceptual(name: &str) -> PyResult<Perceptual> {
    Ok(match name {
        "phash" => Perceptual::PHash,
        "dhash" => Perceptual::DHash,
        "dhash_vertical" => Perceptual::DHashVertical,
        "dhash_double" => Perceptual::DHashDouble,
        "ahash" => Perceptual::AHash,
        "mhash" => Perceptual::MHash,
        "blockhash" => Perceptual::Blockhash,
        other => return Err(PyValueError::new_err(format!("unknown perceptual hash {other:?}"))),
    })
}

/// A perceptual hash (`phash`, `dhash`, ...) of image file bytes, as hex.
#[pyfunction]
fn perceptual_bytes(py: Python<'_>, algorithm: &str, data: &[u8]) -> PyResult<String> {
    let algorithm = perceptual(algorithm)?;
    py.detach(|| Ok(algorithm.hash_hex(&decode(data)?)))
}

/// A perceptual hash of an RGB array, as hex.
#[pyfunction]
fn perceptual_array(algorithm: &str, array: PyReadonlyArray3<'_, u8>) -> PyResult<String> {
    Ok(perceptual(algorithm)?.hash_hex(&rgb_image(&array)?))
}

/// The vPDQ hash of video file bytes (within frankly's video limits), as
/// `(frame_number, hash_hex, quality, timestamp)` per hashed frame: one
/// frame every `seconds_per_hash` seconds (0: every frame); timestamps are
/// presentation times, or Meta's frame number / frame rate with
/// `frame_rate_timestamps` (what Meta's published hashes hold).
#[pyfunction]
#[pyo3(signature = (data, seconds_per_hash = 0.0, frame_rate_timestamps = false))]
fn vpdq_bytes(
    py: Python<'_>,
    data: &[u8],
    seconds_per_hash: f64,
    frame_rate_timestamps: bool,
) -> PyResult<Vec<(u64, String, u8, f64)>> {
    let timestamps = if frame_rate_timestamps {
        frankly_video::Timestamps::FrameRate
    } else {
        frankly_video::Timestamps::Presentation
    };
    let options = frankly_video::VpdqOptions {
        video: frankly_video::VideoOptions { seconds_per_hash, ..Default::default() },
        timestamps,
    };
    py.detach(|| {
        let hashed = frankly_video::vpdq(data, &options, |_, _| {}).map_err(value_error)?;
        Ok(hashed.features.iter().map(|f| (f.frame_number, f.hash.to_string(), f.quality, f.timestamp)).collect())
    })
}

/// SHA-256 of bytes, hex.
#[pyfunction]
fn sha256(py: Python<'_>, data: &[u8]) -> String {
    py.detach(|| frankly_hash::sha256_hex(data))
}

/// MD5 of bytes, hex (only to look up lists published as MD5).
#[pyfunction]
fn md5(py: Python<'_>, data: &[u8]) -> String {
    py.detach(|| frankly_hash::md5_hex(data))
}

/// A PDQ hash as `pdqhash` returns it: 256 integers 0 or 1, most
/// significant bit of the hex form first.
fn bit_vector(hash: &frankly_hash::PdqHash) -> Vec<i64> {
    hash.0.iter().flat_map(|byte| (0..8).rev().map(move |i| i64::from((byte >> i) & 1))).collect()
}

/// `pdqhash.compute(image)`: the hash as a bit vector and the quality.
#[pyfunction]
fn pdqhash_compute<'py>(
    py: Python<'py>,
    array: PyReadonlyArray3<'py, u8>,
) -> PyResult<(Bound<'py, PyArray1<i64>>, i64)> {
    let (width, height, bytes) = pixels(&array)?;
    let out = PdqHasher::new().hash_rgb8(width, height, &bytes).map_err(value_error)?;
    Ok((bit_vector(&out.hash).into_pyarray(py), i64::from(out.quality)))
}

/// `pdqhash.compute_dihedral(image)`: eight bit vectors and the quality.
#[pyfunction]
fn pdqhash_compute_dihedral<'py>(
    py: Python<'py>,
    array: PyReadonlyArray3<'py, u8>,
) -> PyResult<(Vec<Bound<'py, PyArray1<i64>>>, i64)> {
    let (width, height, bytes) = pixels(&array)?;
    let out = PdqHasher::new().hash_dihedral_rgb8(width, height, &bytes).map_err(value_error)?;
    Ok((out.hashes.iter().map(|h| bit_vector(h).into_pyarray(py)).collect(), i64::from(out.quality)))
}

/// `pdqhash.compute_float(image)`: the 256 DCT coefficients, last bit's
/// first (as `pdqhash` flattens and reverses them), and the quality.
#[pyfunction]
fn pdqhash_compute_float<'py>(
    py: Python<'py>,
    array: PyReadonlyArray3<'py, u8>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, i64)> {
    let image = rgb_image(&array)?;
    let mut hasher = PdqHasher::new();
    let quality = hasher.hash(&image).quality;
    let coefficients = hasher.coefficients(&image).unwrap_or([[0.0; 16]; 16]);
    let flat: Vec<f64> = coefficients.iter().flatten().rev().map(|&c| f64::from(c)).collect();
    Ok((flat.into_pyarray(py), i64::from(quality)))
}

/// A hash bank with its exact index: every query returns what a linear
/// scan over the bank returns.
#[pyclass(frozen, module = "frankly")]
struct Bank {
    bank: LibBank,
    index: HammingIndex,
    skipped: Vec<(usize, String)>,
}

fn signal_type(name: &str) -> PyResult<SignalType> {
    name.parse().map_err(value_error)
}

/// Hashes from a list of hex strings or a 2-D `uint8` array with one
/// hash per row as the bytes of its hex form; errors name the item.
fn hashes_of(signal: SignalType, what: &str, items: &Bound<'_, PyAny>) -> PyResult<Vec<Words>> {
    let item_error = |i: usize, e: frankly_bank::HashParseError| value_error(format!("{what} {i}: {e}"));
    if let Ok(array) = items.extract::<PyReadonlyArray2<'_, u8>>() {
        let view = array.as_array();
        let mut row_bytes = Vec::with_capacity(view.ncols());
        let mut out = Vec::with_capacity(view.nrows());
        for (i, row) in view.rows().into_iter().enumerate() {
            row_bytes.clear();
            row_bytes.extend(row.iter().copied());
            out.push(signal.hash_from_bytes(&row_bytes).map_err(|e| item_error(i, e))?);
        }
        return Ok(out);
    }
    if let Ok(hexes) = items.extract::<Vec<String>>() {
        return hexes
            .iter()
            .enumerate()
            .map(|(i, h)| signal.parse_hash(h.trim()).map_err(|e| item_error(i, e)))
            .collect();
    }
    Err(PyValueError::new_err(format!("{what}s must be a list of hex hashes or a 2-D uint8 array of hash bytes")))
}

impl Bank {
    fn wrap(bank: LibBank, skipped: Vec<(usize, String)>) -> Self {
        let index = HammingIndex::new(bank.signal.bits(), bank.entries.iter().map(|e| e.hash).collect());
        Bank { bank, index, skipped }
    }

    fn radius(&self, max_distance: Option<u32>) -> u32 {
        max_distance.unwrap_or(self.bank.threshold)
    }
}

#[pymethods]
impl Bank {
    /// A bank from hashes, one per entry: a list of hex strings or a 2-D
    /// `uint8` array, one hash per row as bytes. Equal hashes are merged.
    #[new]
    #[pyo3(signature = (hashes, signal = "pdq", name = "bank"))]
    fn new(py: Python<'_>, hashes: &Bound<'_, PyAny>, signal: &str, name: &str) -> PyResult<Self> {
        let signal = signal_type(signal)?;
        let words = hashes_of(signal, "hash", hashes)?;
        py.detach(|| {
            let entries = words.into_iter().map(|hash| Entry { hash, labels: BTreeSet::new(), source_id: None });
            let (bank, _) = LibBank::from_entries(name, signal, entries).map_err(value_error)?;
            Ok(Bank::wrap(bank, Vec::new()))
        })
    }

    /// A bank from a text list: `hex` (one hash per line), `csv` (hash,
    /// labels) or `threatexchange` (HMA's CSV export). Bad lines are
    /// skipped and listed in `skipped`, unless `strict`.
    #[staticmethod]
    #[pyo3(signature = (text, format = "hex", signal = "pdq", name = "bank", strict = false))]
    fn from_text(text: &str, format: &str, signal: &str, name: &str, strict: bool) -> PyResult<Self> {
        let format: TextFormat = format.parse().map_err(value_error)?;
        let (bank, report) =
            LibBank::import_text(name, signal_type(signal)?, format, text, strict).map_err(value_error)?;
        Ok(Bank::wrap(bank, report.skipped.into_iter().map(|e| (e.line, e.reason)).collect()))
    }

    /// A bank from frankly's bank file (`frankly bank import` writes it).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        py.detach(|| {
            let bytes = std::fs::read(&path).map_err(|e| value_error(format!("{}: {e}", path.display())))?;
            LibBank::from_bytes(&bytes).map(|b| Bank::wrap(b, Vec::new())).map_err(value_error)
        })
    }

    /// A bank from a signed bundle, verified against the platform's public
    /// key (the text `frankly keygen` prints) at `now` (Unix seconds,
    /// default the clock): refused if unsigned, altered or expired.
    #[staticmethod]
    #[pyo3(signature = (data, public_key, now = None))]
    fn from_bundle(data: &[u8], public_key: &str, now: Option<u64>) -> PyResult<Self> {
        let key = frankly_bundle::parse_public_key(public_key).map_err(value_error)?;
        let now = now.unwrap_or_else(frankly_bundle::unix_now);
        let verified = frankly_bank::verify_bundle(data, &key, now, None).map_err(value_error)?;
        Ok(Bank::wrap(verified.into_bank(), Vec::new()))
    }

    /// The bank's name.
    #[getter]
    fn name(&self) -> &str {
        &self.bank.name
    }

    /// The signal type (`pdq`, `phash`, ...).
    #[getter]
    fn signal(&self) -> &'static str {
        self.bank.signal.name()
    }

    /// The bank's match threshold, the default `max_distance`.
    #[getter]
    fn threshold(&self) -> u32 {
        self.bank.threshold
    }

    /// Lines the import skipped, as `(line, reason)`.
    #[getter]
    fn skipped(&self) -> Vec<(usize, String)> {
        self.skipped.clone()
    }

    fn __len__(&self) -> usize {
        self.bank.entries.len()
    }

    /// The entries' hashes, hex, in entry order.
    fn hashes(&self) -> Vec<String> {
        self.bank.entries.iter().map(|e| self.bank.signal.format_hash(&e.hash)).collect()
    }

    /// Entries within `max_distance` (default: the bank's threshold) of a
    /// hex hash, nearest first, as dicts with `index`, `hash`, `distance`
    /// and `labels`.
    #[pyo3(signature = (hash, max_distance = None))]
    fn query<'py>(&self, py: Python<'py>, hash: &str, max_distance: Option<u32>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let query = self.bank.signal.parse_hash(hash.trim()).map_err(value_error)?;
        let radius = self.radius(max_distance);
        let hits = py.detach(|| self.index.range(&query, radius));
        hits.into_iter()
            .map(|hit| {
                let entry = &self.bank.entries[hit.id as usize];
                let d = PyDict::new(py);
                d.set_item("index", hit.id)?;
                d.set_item("hash", self.bank.signal.format_hash(&entry.hash))?;
                d.set_item("distance", hit.distance)?;
                d.set_item("labels", entry.labels.iter().collect::<Vec<_>>())?;
                Ok(d)
            })
            .collect()
    }

    /// Every (query, entry) pair within `max_distance` (default: the bank's
    /// threshold), as three numpy arrays `(query_index, entry_index,
    /// distance)`, by query, then distance, then entry. `queries` is a list
    /// of hex hashes or a 2-D `uint8` array with one hash per row as bytes
    /// (`bytes.fromhex(hex)`). Searches in parallel without the GIL.
    #[pyo3(signature = (queries, max_distance = None))]
    #[allow(clippy::type_complexity)]
    fn query_many<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        max_distance: Option<u32>,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i32>>)> {
        let words = hashes_of(self.bank.signal, "query", queries)?;
        let radius = self.radius(max_distance);
        let hits = py.detach(|| self.index.range_many(&words, radius));
        let total: usize = hits.iter().map(Vec::len).sum();
        let (mut q, mut e, mut d) = (Vec::with_capacity(total), Vec::with_capacity(total), Vec::with_capacity(total));
        for (i, row) in hits.iter().enumerate() {
            for hit in row {
                q.push(i as i64);
                e.push(i64::from(hit.id));
                d.push(hit.distance as i32);
            }
        }
        Ok((q.into_pyarray(py), e.into_pyarray(py), d.into_pyarray(py)))
    }

    fn __repr__(&self) -> String {
        format!(
            "Bank(name={:?}, signal={:?}, entries={})",
            self.bank.name,
            self.bank.signal.name(),
            self.bank.entries.len()
        )
    }
}

/// The on-device scanner: a policy, banks and the models its rules read.
#[pyclass(frozen, module = "frankly")]
struct Scanner {
    scanner: LibScanner,
}

#[pymethods]
impl Scanner {
    /// A scanner for a policy's TOML text (trusted as the caller's own; a
    /// messenger verifies the platform's signed policy instead), the
    /// audience (default: the policy's first), banks, the models directory
    /// (needed when the policy has classifier rules) and settings.
    #[new]
    #[pyo3(signature = (policy, audience = None, banks = Vec::new(), models_dir = None, settings = BTreeMap::new()))]
    fn new(
        py: Python<'_>,
        policy: &str,
        audience: Option<&str>,
        banks: Vec<Py<Bank>>,
        models_dir: Option<PathBuf>,
        settings: BTreeMap<String, bool>,
    ) -> PyResult<Self> {
        let policy = trust_local_policy(policy).map_err(value_error)?;
        let audience = match audience {
            Some(a) => a.parse::<Audience>().map_err(value_error)?,
            None => policy.policy().default_audience(),
        };
        let verified =
            banks.iter().map(|b| trust_local_bank(&b.get().bank).map_err(value_error)).collect::<PyResult<Vec<_>>>()?;
        py.detach(|| {
            let mut builder = LibScanner::builder(policy, audience);
            for bank in verified {
                builder = builder.bank(bank);
            }
            if let Some(dir) = &models_dir {
                builder = builder.models_from_dir(dir).map_err(value_error)?;
            }
            for (name, on) in &settings {
                builder = builder.setting(name, *on);
            }
            builder.build().map(|scanner| Scanner { scanner }).map_err(value_error)
        })
    }

    /// Scans a message (text and `(bytes, media_type)` attachments) and
    /// returns the verdict as JSON (`frankly.Scanner.scan` parses it).
    #[pyo3(signature = (text = "", attachments = Vec::new(), direction = "incoming", contact = None, first_message = None))]
    fn scan_json(
        &self,
        py: Python<'_>,
        text: &str,
        attachments: Vec<(Vec<u8>, String)>,
        direction: &str,
        contact: Option<bool>,
        first_message: Option<bool>,
    ) -> PyResult<String> {
        let direction: Direction = direction.parse().map_err(value_error)?;
        let facts = Facts { sender_is_contact: contact, first_message_from_sender: first_message };
        let message = attachments
            .into_iter()
            .fold(Message::text(text), |m, (bytes, media_type)| m.with_attachment(Attachment::new(bytes, &media_type)));
        py.detach(|| serde_json::to_string(&self.scanner.scan(direction, &message, facts)).map_err(value_error))
    }
}

/// A 32-byte key from hex.
fn key32(what: &str, text: &str) -> PyResult<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key).map_err(|e| value_error(format!("{what}: {e} (64 hex digits)")))?;
    Ok(key)
}

/// A report key as the moderation server holds it: `(id, seed_hex,
/// open_until_ms)`, the 32-byte seed its key pair is derived from (RFC 9180
/// DeriveKeyPair), as the server stores it and the test vectors give it.
type ReportKeyArg = (u32, String, u64);

/// A platform tagging key: `(id, secret_hex, tag_from_ms, tag_until_ms,
/// verify_until_ms)`.
type PlatformKeyArg = (u32, String, u64, u64, u64);

/// Opens a sealed report envelope with the server's report keys, verifies
/// every message against the platform keys for the authenticated
/// `reporter` (`(user_id, device_id)`) at `now_ms` (default: the clock),
/// and returns the verified report as JSON (`frankly.open_and_verify`
/// parses it). Refused reports raise `ValueError` with the reason. Each
/// call has its own replay guard: callers dedupe on `report_id`.
#[pyfunction]
#[pyo3(signature = (envelope, report_keys, platform_keys, reporter, now_ms = None))]
fn open_and_verify_json(
    py: Python<'_>,
    envelope: &[u8],
    report_keys: Vec<ReportKeyArg>,
    platform_keys: Vec<PlatformKeyArg>,
    reporter: (String, String),
    now_ms: Option<u64>,
) -> PyResult<String> {
    let mut server = frankly_report::ReportKeyring::new();
    for (id, key, open_until_ms) in &report_keys {
        let seed = zeroize::Zeroizing::new(key32(&format!("report key {id}"), key)?);
        server.insert(*id, frankly_report::ServerKeyPair::derive(&seed[..]), *open_until_ms);
    }
    let mut platform = frankly_franking::Keyring::new();
    for (id, secret, tag_from_ms, tag_until_ms, verify_until_ms) in &platform_keys {
        let window = frankly_franking::KeyWindow {
            tag_from_ms: *tag_from_ms,
            tag_until_ms: *tag_until_ms,
            verify_until_ms: *verify_until_ms,
        };
        let key = frankly_franking::PlatformKey::new(*id, key32(&format!("platform key {id}"), secret)?, window)
            .map_err(|e| value_error(format!("platform key {id}: {e}")))?;
        platform.insert(key);
    }
    let reporter = frankly_franking::Party { user_id: reporter.0, device_id: reporter.1 };
    let now_ms = now_ms.unwrap_or_else(|| frankly_bundle::unix_now().saturating_mul(1000));
    py.detach(|| {
        let mut seen = std::collections::HashSet::<[u8; 16]>::new();
        let verified = frankly_report::open_and_verify(envelope, &server, &platform, &reporter, now_ms, &mut seen)
            .map_err(value_error)?;
        let verdicts: Vec<serde_json::Value> = verified
            .verdicts()
            .iter()
            .map(|v| match v {
                frankly_report::Verdict::Verified => serde_json::json!({"verdict": "verified"}),
                frankly_report::Verdict::Unopened => serde_json::json!({"verdict": "unopened"}),
                frankly_report::Verdict::Rejected(e) => {
                    serde_json::json!({"verdict": "rejected", "reason": e.to_string()})
                }
            })
            .collect();
        let order = match verified.order() {
            Ok(order) => serde_json::json!(order),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        let out = serde_json::json!({
            "report_key_id": verified.report_key_id(),
            "report": verified.report(),
            "verdicts": verdicts,
            "order": order,
        });
        serde_json::to_string(&out).map_err(value_error)
    })
}

fn algos(list: &str) -> PyResult<Vec<frankly_eval::HashAlgo>> {
    list.split(',').map(|a| a.trim().parse::<frankly_eval::HashAlgo>().map_err(value_error)).collect()
}

fn corpus(dir: &std::path::Path) -> PyResult<Vec<frankly_eval::CorpusImage>> {
    frankly_eval::list_images(dir).map_err(value_error)
}

/// `frankly eval robustness` on an image corpus: one row per algorithm and
/// transform (recall at the precision and false-positive-rate targets, the
/// thresholds, AUC), and the images or copies that failed, as JSON.
#[pyfunction]
#[pyo3(signature = (corpus_dir, transforms = None, algorithms = "pdq,phash,dhash,ahash,blockhash", seed = 0, precision = frankly_eval::DEFAULT_PRECISION_TARGET, fpr = frankly_eval::DEFAULT_FPR_TARGET))]
fn eval_robustness_json(
    py: Python<'_>,
    corpus_dir: PathBuf,
    transforms: Option<&str>,
    algorithms: &str,
    seed: u64,
    precision: f64,
    fpr: f64,
) -> PyResult<String> {
    let config = frankly_eval::RobustnessConfig {
        transforms: frankly_eval::Transform::parse_list(transforms.unwrap_or(frankly_eval::DEFAULT_TRANSFORMS))
            .map_err(value_error)?,
        algos: algos(algorithms)?,
        seed,
        precision_target: precision,
        fpr_target: fpr,
        ..Default::default()
    };
    py.detach(|| {
        let report = frankly_eval::run_robustness(&corpus(&corpus_dir)?, &config, &|| {}).map_err(value_error)?;
        let rows: Vec<serde_json::Value> = report
            .cells
            .iter()
            .map(|c| {
                serde_json::json!({
                    "algorithm": c.algo,
                    "transform": c.transform,
                    "queries": c.queries.len(),
                    "recall_at_precision": c.at_precision.as_ref().map(|p| p.recall),
                    "threshold_at_precision": c.at_precision.as_ref().map(|p| p.threshold),
                    "precision": c.at_precision.as_ref().and_then(|p| p.precision),
                    "recall_at_fpr": c.at_fpr.recall,
                    "threshold_at_fpr": c.at_fpr.threshold,
                    "fpr": c.at_fpr.fpr,
                    "auc": c.auc,
                })
            })
            .collect();
        serde_json::to_string(&serde_json::json!({"rows": rows, "failures": report.failures})).map_err(value_error)
    })
}

/// `frankly eval fpr` on an image corpus: false matches per threshold per
/// algorithm, and what they mean for a deployment, as JSON.
#[pyfunction]
#[pyo3(signature = (corpus_dir, algorithms = "pdq,phash,dhash,ahash,blockhash", bank_size = 1_000_000, images_per_account = 10_000, target = 1e-12, keep_duplicates = false))]
fn eval_fpr_json(
    py: Python<'_>,
    corpus_dir: PathBuf,
    algorithms: &str,
    bank_size: u64,
    images_per_account: u64,
    target: f64,
    keep_duplicates: bool,
) -> PyResult<String> {
    let config = frankly_eval::FprConfig {
        algos: algos(algorithms)?,
        decode: DecodeOptions::default(),
        bank_size,
        images_per_account,
        target_account_rate: target,
        dedup: !keep_duplicates,
    };
    py.detach(|| {
        let report = frankly_eval::run_fpr(&corpus(&corpus_dir)?, &config, &|| {}).map_err(value_error)?;
        let out = serde_json::json!({
            "rows": report.rows,
            "deployments": report.deployments,
            "failures": report.failures,
        });
        serde_json::to_string(&out).map_err(value_error)
    })
}

/// `frankly eval privacy`: what each party learns in the franked send and
/// the report flows of one real message, measured, as JSON rows.
#[pyfunction]
fn eval_privacy_json(py: Python<'_>, text: &str, jpeg: &[u8]) -> PyResult<String> {
    py.detach(|| {
        let rows = frankly_eval::privacy_table(text, "image/jpeg", jpeg).map_err(value_error)?;
        serde_json::to_string(&rows).map_err(value_error)
    })
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pdq_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(pdq_array, m)?)?;
    m.add_function(wrap_pyfunction!(pdq_dihedral_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(pdq_dihedral_array, m)?)?;
    m.add_function(wrap_pyfunction!(perceptual_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(perceptual_array, m)?)?;
    m.add_function(wrap_pyfunction!(vpdq_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(sha256, m)?)?;
    m.add_function(wrap_pyfunction!(md5, m)?)?;
    m.add_function(wrap_pyfunction!(pdqhash_compute, m)?)?;
    m.add_function(wrap_pyfunction!(pdqhash_compute_dihedral, m)?)?;
    m.add_function(wrap_pyfunction!(pdqhash_compute_float, m)?)?;
    m.add_function(wrap_pyfunction!(open_and_verify_json, m)?)?;
    m.add_function(wrap_pyfunction!(eval_robustness_json, m)?)?;
    m.add_function(wrap_pyfunction!(eval_fpr_json, m)?)?;
    m.add_function(wrap_pyfunction!(eval_privacy_json, m)?)?;
    m.add_class::<Bank>()?;
    m.add_class::<Scanner>()?;
    m.add("MAX_FILE_BYTES", frankly_hash::MAX_FILE_BYTES)?;
    m.add("MAX_VIDEO_BYTES", frankly_video::MAX_VIDEO_BYTES)?;
    Ok(())
}
