//! Banks: named sets of hashes with labels, and their file formats.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::index::Words;
use crate::signal::SignalType;

/// Most entries a bank may hold (bank files claiming more are refused unread).
pub const MAX_ENTRIES: u64 = 50_000_000;
/// Most labels on one entry.
pub const MAX_LABELS_PER_ENTRY: usize = 64;
/// Longest label, source id or bank name, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Longest line in a text list, in bytes.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// One hash in a bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The hash, as index words (see [`crate::index::Words`]).
    pub hash: Words,
    /// Labels or categories, sorted, without duplicates.
    pub labels: BTreeSet<String>,
    /// Where the hash came from (for example a ThreatExchange id), if known.
    pub source_id: Option<String>,
}

/// A named set of hashes of one signal type, with the distance under which a
/// query matches and the quality under which a query is not matched at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bank {
    /// Name shown in matches, e.g. `ncmec-2026-11`.
    pub name: String,
    /// The hash function of every entry.
    pub signal: SignalType,
    /// A query matches an entry within this Hamming distance (inclusive).
    pub threshold: u32,
    /// Query hashes of lower quality are not matched (PDQ only).
    pub quality_floor: u8,
    /// The entries, one per distinct hash.
    pub entries: Vec<Entry>,
}

/// Text list formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    /// One hex hash per line (`#` comments and blank lines ignored).
    Hex,
    /// `hash,label,label,...` per line (the ThreatExchange/HMA export form);
    /// a first line whose first field is not a hash is taken as a header.
    Csv,
    /// A ThreatExchange dataset CSV (`threatexchange dataset -P --csv`):
    /// `signal_type,signal_str,collab,category,tags` with that header; the
    /// rows of the bank's signal type are read (labels: the category and the
    /// tags; source id: the collaboration), the others counted.
    ThreatExchange,
}

impl FromStr for TextFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pdq-hex" | "hex" => Ok(TextFormat::Hex),
            "csv" => Ok(TextFormat::Csv),
            "threatexchange" | "te-csv" => Ok(TextFormat::ThreatExchange),
            _ => Err(format!("unknown list format {s:?}; known: pdq-hex (or hex), csv, threatexchange (or te-csv)")),
        }
    }
}

/// A line of a text list that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What an import did besides producing the bank.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read as entries.
    pub lines_read: usize,
    /// Entries merged into an earlier entry with the same hash.
    pub duplicates_merged: usize,
    /// Lines skipped as invalid (empty in strict mode: the first one fails the import).
    pub skipped: Vec<LineError>,
    /// Rows of a ThreatExchange CSV left out because they are of another
    /// signal type, by type (they belong in another bank).
    pub other_signal_types: BTreeMap<String, usize>,
}

/// Why a bank cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// A line of a text list is invalid and the import is strict.
    #[error("{0} (strict import: nothing was imported)")]
    InvalidLine(LineError),
    /// A name, label or source id is too long or not allowed.
    #[error("{0}")]
    InvalidText(String),
    /// More entries than [`MAX_ENTRIES`].
    #[error("too many entries: {count} (limit {limit})")]
    TooManyEntries {
        /// Entries found or claimed.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not a frankly bank file.
    #[error("not a frankly bank file (bad magic bytes)")]
    NotABank,
    /// A bank file of a format version this build does not read.
    #[error("bank file format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// The file ends early or a field is out of range.
    #[error("malformed bank file at byte {offset}: {reason}")]
    Malformed {
        /// Where the problem is.
        offset: usize,
        /// What it is.
        reason: String,
    },
    /// The checksum does not match the content.
    #[error("bank file checksum mismatch: the file is corrupt or was altered")]
    Checksum,
}

pub(crate) fn check_text(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_TEXT_BYTES {
        return Err(format!("{what} is {} bytes long (limit {MAX_TEXT_BYTES})", s.len()));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} {s:?} contains control characters"));
    }
    Ok(())
}

impl Bank {
    /// An empty bank with the signal type's default threshold and quality floor.
    pub fn new(name: &str, signal: SignalType) -> Result<Self, BankError> {
        check_text("bank name", name).map_err(BankError::InvalidText)?;
        if name.is_empty() {
            return Err(BankError::InvalidText("bank name is empty".into()));
        }
        Ok(Bank {
            name: name.to_string(),
            signal,
            threshold: signal.default_threshold(),
            quality_floor: signal.default_quality_floor(),
            entries: Vec::new(),
        })
    }

    /// Reads a text list into a new bank. Duplicate hashes are merged (their
    /// labels united, the first source id kept). Invalid lines are skipped and
    /// reported, or with `strict` fail the whole import.
    pub fn import_text(
        name: &str,
        signal: SignalType,
        format: TextFormat,
        text: &str,
        strict: bool,
    ) -> Result<(Bank, ImportReport), BankError> {
        let mut bank = Bank::new(name, signal)?;
        let mut report = ImportReport::default();
        let mut merger = Merger::default();
        if format == TextFormat::ThreatExchange {
            for row in crate::threatexchange::rows(text)? {
                let entry = match row {
                    Ok(row) if row.signal_type != signal.name() => {
                        *report.other_signal_types.entry(row.signal_type).or_insert(0) += 1;
                        continue;
                    }
                    Ok(row) => signal
                        .parse_hash(row.signal.trim())
                        .map(|hash| Entry { hash, labels: row.labels, source_id: row.collab })
                        .map_err(|e| LineError { line: row.line, reason: e.to_string() }),
                    Err(e) => Err(e),
                };
                match entry {
                    Ok(entry) => {
                        report.lines_read += 1;
                        report.duplicates_merged += usize::from(merger.add(&mut bank.entries, entry));
                        if bank.entries.len() as u64 > MAX_ENTRIES {
                            let count = bank.entries.len() as u64;
                            return Err(BankError::TooManyEntries { count, limit: MAX_ENTRIES });
                        }
                    }
                    Err(e) if strict => return Err(BankError::InvalidLine(e)),
                    Err(e) => report.skipped.push(e),
                }
            }
            return Ok((bank, report));
        }
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = if line.len() > MAX_LINE_BYTES {
                Err(format!("line is {} bytes long (limit {MAX_LINE_BYTES})", line.len()))
            } else {
                parse_line(signal, format, line)
            };
            match parsed {
                Ok(entry) => {
                    report.lines_read += 1;
                    if merger.add(&mut bank.entries, entry) {
                        report.duplicates_merged += 1;
                    }
                    if bank.entries.len() as u64 > MAX_ENTRIES {
                        return Err(BankError::TooManyEntries { count: bank.entries.len() as u64, limit: MAX_ENTRIES });
                    }
                }
                // A CSV header: the first line whose first field is not a hash.
                Err(_)
                    if format == TextFormat::Csv
                        && report.lines_read == 0
                        && report.skipped.is_empty()
                        && !looks_like_hash(line) => {}
                Err(reason) => {
                    let error = LineError { line: line_no, reason };
                    if strict {
                        return Err(BankError::InvalidLine(error));
                    }
                    report.skipped.push(error);
                }
            }
        }
        Ok((bank, report))
    }

    /// A bank of `entries`, merged as [`Bank::import_text`] merges a list's
    /// lines (equal hashes become one entry with the labels united, the
    /// first source id kept); refuses more than [`MAX_ENTRIES`] entries.
    pub fn from_entries(
        name: &str,
        signal: SignalType,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<(Bank, ImportReport), BankError> {
        let mut bank = Bank::new(name, signal)?;
        let mut report = ImportReport::default();
        let mut merger = Merger::default();
        for entry in entries {
            report.lines_read += 1;
            report.duplicates_merged += usize::from(merger.add(&mut bank.entries, entry));
            if bank.entries.len() as u64 > MAX_ENTRIES {
                return Err(BankError::TooManyEntries { count: bank.entries.len() as u64, limit: MAX_ENTRIES });
            }
        }
        Ok((bank, report))
    }

    /// Writes the bank as a text list (labels only in the CSV forms).
    pub fn export_text(&self, format: TextFormat) -> String {
        if format == TextFormat::ThreatExchange {
            return crate::threatexchange::write(self.entries.iter().map(|e| crate::threatexchange::Row {
                line: 0,
                signal_type: self.signal.name().into(),
                signal: self.signal.format_hash(&e.hash),
                collab: e.source_id.clone(),
                labels: e.labels.clone(),
            }));
        }
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&self.signal.format_hash(&e.hash));
            if format == TextFormat::Csv {
                for label in &e.labels {
                    out.push(',');
                    out.push_str(label);
                }
            }
            out.push('\n');
        }
        out
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the bank has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Distinct labels and how many entries carry each.
    pub fn label_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.entries {
            for l in &e.labels {
                *counts.entry(l.as_str()).or_insert(0) += 1;
            }
        }
        counts
    }
}

fn looks_like_hash(line: &str) -> bool {
    let first = line.split(',').next().unwrap_or("").trim();
    !first.is_empty() && first.chars().all(|c| c.is_ascii_hexdigit())
}

fn parse_line(signal: SignalType, format: TextFormat, line: &str) -> Result<Entry, String> {
    let mut fields = line.split(',').map(str::trim);
    let hash_text = fields.next().unwrap_or("");
    let hash = signal.parse_hash(hash_text).map_err(|e| e.to_string())?;
    let mut labels = BTreeSet::new();
    match format {
        TextFormat::Hex => {
            if line.contains(',') {
                return Err("extra fields after the hash (use --format csv for labelled lists)".into());
            }
        }
        // ThreatExchange CSV is read row by row in `import_text`.
        TextFormat::Csv | TextFormat::ThreatExchange => {
            for label in fields.filter(|f| !f.is_empty()) {
                check_text("label", label)?;
                labels.insert(label.to_string());
            }
            if labels.len() > MAX_LABELS_PER_ENTRY {
                return Err(format!("{} labels (limit {MAX_LABELS_PER_ENTRY})", labels.len()));
            }
        }
    }
    Ok(Entry { hash, labels, source_id: None })
}

/// Merges entries with equal hashes as they are added.
#[derive(Default)]
struct Merger {
    position: HashMap<Words, usize>,
}

impl Merger {
    /// Adds `entry`; returns whether it was merged into an existing one.
    fn add(&mut self, entries: &mut Vec<Entry>, entry: Entry) -> bool {
        if let Some(&i) = self.position.get(&entry.hash) {
            let existing = &mut entries[i];
            existing.labels.extend(entry.labels);
            if existing.source_id.is_none() {
                existing.source_id = entry.source_id;
            }
            true
        } else {
            self.position.insert(entry.hash, entries.len());
            entries.push(entry);
            false
        }
    }
}

// ---------------------------------------------------------------------------
// Binary bank files. Layout (all integers little-endian):
//
//   magic "FRANKLYB" | u16 format version (1) | u8 signal code | u8 quality floor
//   | u16 threshold | u16 name length, name | u32 label count L, L x (u16 len, bytes)
//   | u64 entry count N | N x (hash bytes (bits/8) | u16 k, k x u32 label index
//   | u16 source id length, bytes (0: none)) | 32-byte SHA-256 of all bytes before it
// ---------------------------------------------------------------------------

const BANK_MAGIC: &[u8; 8] = b"FRANKLYB";
const BANK_VERSION: u16 = 1;

impl Bank {
    /// Encodes the bank as a binary bank file. Fails if a field is out of
    /// the ranges the format (and [`Bank::from_bytes`]) accepts.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BankError> {
        self.validate()?;
        let labels: BTreeSet<&str> = self.entries.iter().flat_map(|e| e.labels.iter().map(String::as_str)).collect();
        let label_index: HashMap<&str, u32> = labels.iter().enumerate().map(|(i, l)| (*l, i as u32)).collect();
        let mut out = Vec::with_capacity(64 + self.entries.len() * (self.signal.bits() as usize / 8 + 4));
        out.extend_from_slice(BANK_MAGIC);
        out.extend_from_slice(&BANK_VERSION.to_le_bytes());
        out.push(self.signal.code());
        out.push(self.quality_floor);
        out.extend_from_slice(&(self.threshold as u16).to_le_bytes());
        put_text(&mut out, &self.name);
        out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
        for l in &labels {
            put_text(&mut out, l);
        }
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&self.signal.bytes_of(&e.hash));
            out.extend_from_slice(&(e.labels.len() as u16).to_le_bytes());
            for l in &e.labels {
                out.extend_from_slice(&label_index[l.as_str()].to_le_bytes());
            }
            put_text(&mut out, e.source_id.as_deref().unwrap_or(""));
        }
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Checks every field against the limits of the file format.
    pub fn validate(&self) -> Result<(), BankError> {
        let invalid = BankError::InvalidText;
        check_text("bank name", &self.name).map_err(invalid)?;
        if self.threshold > self.signal.bits() {
            return Err(invalid(format!(
                "threshold {} is over the {} bits of a {} hash",
                self.threshold,
                self.signal.bits(),
                self.signal
            )));
        }
        if self.quality_floor > 100 {
            return Err(invalid(format!("quality floor {} is over 100", self.quality_floor)));
        }
        if self.entries.len() as u64 > MAX_ENTRIES {
            return Err(BankError::TooManyEntries { count: self.entries.len() as u64, limit: MAX_ENTRIES });
        }
        for e in &self.entries {
            if e.labels.len() > MAX_LABELS_PER_ENTRY {
                return Err(invalid(format!("an entry has {} labels (limit {MAX_LABELS_PER_ENTRY})", e.labels.len())));
            }
            for l in &e.labels {
                check_text("label", l).map_err(invalid)?;
            }
            if let Some(s) = &e.source_id {
                check_text("source id", s).map_err(invalid)?;
            }
        }
        Ok(())
    }

    /// Decodes a binary bank file, checking its checksum, every length and
    /// count against the bytes present, and that nothing trails.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bank, BankError> {
        if bytes.len() < 8 || &bytes[..8] != BANK_MAGIC {
            return Err(BankError::NotABank);
        }
        if bytes.len() < 8 + 2 + 32 {
            return Err(BankError::Malformed { offset: bytes.len(), reason: "file ends inside the header".into() });
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != BANK_VERSION {
            return Err(BankError::UnsupportedVersion(version));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != checksum {
            return Err(BankError::Checksum);
        }
        let mut c = Cursor { bytes: body, pos: 10 };
        let signal = {
            let code = c.u8()?;
            SignalType::from_code(code).ok_or_else(|| c.err(format!("unknown signal type code {code}")))?
        };
        let quality_floor = c.u8()?;
        if quality_floor > 100 {
            return Err(c.err(format!("quality floor {quality_floor} is over 100")));
        }
        let threshold = u32::from(c.u16()?);
        if threshold > signal.bits() {
            return Err(c.err(format!("threshold {threshold} is over the {} bits of a {signal} hash", signal.bits())));
        }
        let name = c.text("bank name")?;
        let label_count = c.u32()? as usize;
        // Each label takes at least its 2-byte length.
        c.need(label_count.saturating_mul(2), "label table")?;
        let labels: Vec<String> = (0..label_count).map(|_| c.text("label")).collect::<Result<_, _>>()?;
        let count = c.u64()?;
        if count > MAX_ENTRIES {
            return Err(BankError::TooManyEntries { count, limit: MAX_ENTRIES });
        }
        let hash_bytes = (signal.bits() / 8) as usize;
        // Each entry takes at least its hash and two 2-byte lengths.
        c.need((count as usize).saturating_mul(hash_bytes + 4), "entries")?;
        let mut entries = Vec::with_capacity(count as usize);
        let mut merger = Merger::default();
        for _ in 0..count {
            let at = c.pos;
            let hash = signal.words_from_bytes(c.take(hash_bytes)?);
            let k = c.u16()? as usize;
            if k > MAX_LABELS_PER_ENTRY {
                return Err(c.err(format!("entry has {k} labels (limit {MAX_LABELS_PER_ENTRY})")));
            }
            let mut entry_labels = BTreeSet::new();
            for _ in 0..k {
                let i = c.u32()? as usize;
                let label = labels.get(i).ok_or_else(|| c.err(format!("label index {i} out of range")))?;
                entry_labels.insert(label.clone());
            }
            let source = c.text("source id")?;
            let entry = Entry { hash, labels: entry_labels, source_id: (!source.is_empty()).then_some(source) };
            if merger.add(&mut entries, entry) {
                return Err(BankError::Malformed { offset: at, reason: "duplicate hash".into() });
            }
        }
        if c.pos != body.len() {
            return Err(c.err(format!("{} unexpected bytes after the entries", body.len() - c.pos)));
        }
        Ok(Bank { name, signal, threshold, quality_floor, entries })
    }
}

pub(crate) fn put_text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Reads fields with bounds checks; every error names its byte offset.
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn err(&self, reason: String) -> BankError {
        BankError::Malformed { offset: self.pos, reason }
    }

    pub(crate) fn need(&self, n: usize, what: &str) -> Result<(), BankError> {
        if self.bytes.len() - self.pos < n {
            return Err(self.err(format!("{what} claim {n} bytes, only {} remain", self.bytes.len() - self.pos)));
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], BankError> {
        if self.bytes.len() - self.pos < n {
            return Err(self.err(format!("file ends early: {n} bytes needed, {} remain", self.bytes.len() - self.pos)));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BankError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, BankError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, BankError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, BankError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, BankError> {
        Ok(f64::from_bits(self.u64()?))
    }

    pub(crate) fn text(&mut self, what: &str) -> Result<String, BankError> {
        let len = self.u16()? as usize;
        let at = self.pos;
        let s = std::str::from_utf8(self.take(len)?)
            .map_err(|_| BankError::Malformed { offset: at, reason: format!("{what} is not UTF-8") })?;
        check_text(what, s).map_err(|reason| BankError::Malformed { offset: at, reason })?;
        Ok(s.to_string())
    }
}
