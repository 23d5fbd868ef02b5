//! Video banks: the vPDQ hashes of known videos, their file format, and
//! matching by vPDQ's rule with candidates found through the exact PDQ index
//! over every banked frame.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use frankly_hash::{PdqHash, VpdqFeature};
use sha2::{Digest, Sha256};

use crate::bank::{BankError, Cursor, ImportReport, LineError, MAX_LABELS_PER_ENTRY, check_text, put_text};
use crate::index::HammingIndex;
use crate::threatexchange::{self, Row};
use crate::vpdq::{VpdqThresholds, percent, percentages, usable_features, usable_hashes};

/// Most videos one video bank may hold.
pub const MAX_VIDEOS: u64 = 10_000_000;
/// Most frames (features) over all videos of one video bank: the index holds
/// one entry per usable frame.
pub const MAX_VIDEO_BANK_FRAMES: u64 = 50_000_000;

/// One known video.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoEntry {
    /// Its vPDQ features, in frame order.
    pub features: Vec<VpdqFeature>,
    /// Labels or categories, sorted, without duplicates.
    pub labels: BTreeSet<String>,
    /// Where it came from (a ThreatExchange collaboration, a file name), if known.
    pub source_id: Option<String>,
}

/// A named set of known videos (signal type `vpdq`), with the thresholds of
/// the match rule.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoBank {
    /// Name shown in matches.
    pub name: String,
    /// The match rule's thresholds; `quality` applies to both sides.
    pub thresholds: VpdqThresholds,
    /// The videos.
    pub entries: Vec<VideoEntry>,
}

impl VideoBank {
    /// An empty bank with HMA's default thresholds.
    pub fn new(name: &str) -> Result<Self, BankError> {
        check_text("bank name", name).map_err(BankError::InvalidText)?;
        if name.is_empty() {
            return Err(BankError::InvalidText("bank name is empty".into()));
        }
        Ok(VideoBank { name: name.to_owned(), thresholds: VpdqThresholds::default(), entries: Vec::new() })
    }

    /// Frames over all videos.
    pub fn frames(&self) -> u64 {
        self.entries.iter().map(|e| e.features.len() as u64).sum()
    }

    /// Adds a video, checking its labels and the bank's limits. A video with
    /// exactly the features of one already banked is merged into it (labels
    /// united, the first source id kept); returns whether it was. Each call
    /// looks through the bank: a list goes in with [`VideoBank::add_many`].
    pub fn add(&mut self, entry: VideoEntry) -> Result<bool, BankError> {
        let mut merger = Merger::of(self);
        merger.insert(self, entry)
    }

    /// Adds the videos of a list, each with its line (or file) number and
    /// either the video or why it could not be read, in time linear in their
    /// number: duplicates merged as [`VideoBank::add`] merges them, invalid
    /// items skipped and reported, or with `strict` the first one fails.
    pub fn add_many(
        &mut self,
        items: impl IntoIterator<Item = (usize, Result<VideoEntry, String>)>,
        strict: bool,
        report: &mut ImportReport,
    ) -> Result<(), BankError> {
        let mut merger = Merger::of(self);
        for (line, item) in items {
            match item.and_then(|entry| merger.insert(self, entry).map_err(|e| e.to_string())) {
                Ok(merged) => {
                    report.lines_read += 1;
                    report.duplicates_merged += usize::from(merged);
                }
                Err(reason) if strict => return Err(BankError::InvalidLine(LineError { line, reason })),
                Err(reason) => report.skipped.push(LineError { line, reason }),
            }
        }
        Ok(())
    }

    /// Reads the `vpdq` rows of a ThreatExchange dataset CSV (`threatexchange
    /// dataset -P --csv`: `signal_type,signal_str,collab,category,tags`,
    /// whose `signal_str` is HMA's vPDQ signal string). Each row is a video;
    /// its labels are the category and the tags, its source id the
    /// collaboration. Rows of other signal types are counted in the report;
    /// invalid rows are skipped and reported, or with `strict` fail the import.
    pub fn import_threatexchange(name: &str, text: &str, strict: bool) -> Result<(VideoBank, ImportReport), BankError> {
        let mut bank = VideoBank::new(name)?;
        let mut report = ImportReport::default();
        let mut other_types = BTreeMap::new();
        let videos = threatexchange::rows(text)?.filter_map(|row| match row {
            Ok(row) if row.signal_type != "vpdq" => {
                *other_types.entry(row.signal_type).or_insert(0) += 1;
                None
            }
            Ok(row) => {
                let entry = frankly_hash::parse_hma_signal(&row.signal)
                    .map(|features| VideoEntry { features, labels: row.labels, source_id: row.collab })
                    .map_err(|e| e.to_string());
                Some((row.line, entry))
            }
            Err(e) => Some((e.line, Err(e.reason))),
        });
        bank.add_many(videos, strict, &mut report)?;
        report.other_signal_types = other_types;
        Ok((bank, report))
    }

    /// Writes the bank as a ThreatExchange dataset CSV (the form
    /// [`VideoBank::import_threatexchange`] reads): the labels go in the
    /// `tags` column, the source id in `collab`.
    pub fn export_threatexchange(&self) -> String {
        let rows = self.entries.iter().map(|e| Row {
            line: 0,
            signal_type: "vpdq".into(),
            signal: frankly_hash::to_hma_signal(&e.features),
            collab: e.source_id.clone(),
            labels: e.labels.clone(),
        });
        threatexchange::write(rows)
    }

    /// Checks every field against the limits of the file format.
    pub fn validate(&self) -> Result<(), BankError> {
        let invalid = BankError::InvalidText;
        check_text("bank name", &self.name).map_err(invalid)?;
        check_thresholds(&self.thresholds).map_err(invalid)?;
        if self.entries.len() as u64 > MAX_VIDEOS {
            return Err(BankError::TooManyEntries { count: self.entries.len() as u64, limit: MAX_VIDEOS });
        }
        if self.frames() > MAX_VIDEO_BANK_FRAMES {
            return Err(BankError::TooManyEntries { count: self.frames(), limit: MAX_VIDEO_BANK_FRAMES });
        }
        for e in &self.entries {
            check_entry(e).map_err(invalid)?;
        }
        Ok(())
    }
}

/// Finds duplicates by a digest of the features, and keeps the frame count.
struct Merger {
    by_digest: HashMap<[u8; 32], usize>,
    frames: u64,
}

impl Merger {
    fn of(bank: &VideoBank) -> Merger {
        let by_digest = bank.entries.iter().enumerate().map(|(i, e)| (digest(&e.features), i)).collect();
        Merger { by_digest, frames: bank.frames() }
    }

    /// Adds or merges `entry`; returns whether it was merged.
    fn insert(&mut self, bank: &mut VideoBank, entry: VideoEntry) -> Result<bool, BankError> {
        check_entry(&entry).map_err(BankError::InvalidText)?;
        let key = digest(&entry.features);
        if let Some(&i) = self.by_digest.get(&key)
            && bank.entries[i].features == entry.features
        {
            let existing = &mut bank.entries[i];
            existing.labels.extend(entry.labels);
            if existing.source_id.is_none() {
                existing.source_id = entry.source_id;
            }
            return Ok(true);
        }
        if bank.entries.len() as u64 >= MAX_VIDEOS {
            return Err(BankError::TooManyEntries { count: bank.entries.len() as u64 + 1, limit: MAX_VIDEOS });
        }
        let frames = self.frames + entry.features.len() as u64;
        if frames > MAX_VIDEO_BANK_FRAMES {
            return Err(BankError::TooManyEntries { count: frames, limit: MAX_VIDEO_BANK_FRAMES });
        }
        self.frames = frames;
        self.by_digest.insert(key, bank.entries.len());
        bank.entries.push(entry);
        Ok(false)
    }
}

/// SHA-256 of every field of every feature.
fn digest(features: &[VpdqFeature]) -> [u8; 32] {
    let mut h = Sha256::new();
    for f in features {
        h.update(f.frame_number.to_le_bytes());
        h.update([f.quality]);
        h.update(f.hash.0);
        h.update(f.timestamp.to_bits().to_le_bytes());
    }
    h.finalize().into()
}

fn check_entry(e: &VideoEntry) -> Result<(), String> {
    if e.labels.len() > MAX_LABELS_PER_ENTRY {
        return Err(format!("a video has {} labels (limit {MAX_LABELS_PER_ENTRY})", e.labels.len()));
    }
    for l in &e.labels {
        check_text("label", l)?;
    }
    if let Some(s) = &e.source_id {
        check_text("source id", s)?;
    }
    if e.features.is_empty() {
        return Err("a video has no frames".into());
    }
    if e.features.len() > frankly_hash::MAX_VPDQ_FEATURES {
        return Err(format!("a video has {} frames (limit {})", e.features.len(), frankly_hash::MAX_VPDQ_FEATURES));
    }
    for f in &e.features {
        if f.quality > 100 || !f.timestamp.is_finite() || f.timestamp < 0.0 || f.frame_number > u64::from(u32::MAX) {
            return Err(format!("frame {} has quality {} and timestamp {}", f.frame_number, f.quality, f.timestamp));
        }
    }
    Ok(())
}

fn check_thresholds(t: &VpdqThresholds) -> Result<(), String> {
    if t.quality > 100 {
        return Err(format!("quality threshold {} is over 100", t.quality));
    }
    if t.distance > frankly_hash::PDQ_BITS {
        return Err(format!("distance threshold {} is over the 256 bits of a PDQ hash", t.distance));
    }
    for (side, p) in [("query", t.min_query_percent), ("compared", t.min_compared_percent)] {
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("{side} percentage {p} is not 0 to 100"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Binary video bank files. Layout (all integers little-endian):
//
//   magic "FRANKLYV" | u16 format version (1) | u8 quality | u16 distance
//   | f64 min query percent | f64 min compared percent | u16 name length, name
//   | u32 label count L, L x (u16 len, bytes) | u64 video count N
//   | N x (u16 k, k x u32 label index | u16 source id length, bytes (0: none)
//          | u32 frame count F | F x (u32 frame number | u8 quality
//          | 32 bytes PDQ hash, hex order | f64 timestamp))
//   | 32-byte SHA-256 of all bytes before it
// ---------------------------------------------------------------------------

pub(crate) const VIDEO_BANK_MAGIC: &[u8; 8] = b"FRANKLYV";
const VIDEO_BANK_VERSION: u16 = 1;
const FRAME_BYTES: usize = 4 + 1 + 32 + 8;

impl VideoBank {
    /// Encodes the bank as a binary video bank file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BankError> {
        self.validate()?;
        let labels: BTreeSet<&str> = self.entries.iter().flat_map(|e| e.labels.iter().map(String::as_str)).collect();
        let label_index: HashMap<&str, u32> = labels.iter().enumerate().map(|(i, l)| (*l, i as u32)).collect();
        let mut out = Vec::with_capacity(64 + self.frames() as usize * FRAME_BYTES);
        out.extend_from_slice(VIDEO_BANK_MAGIC);
        out.extend_from_slice(&VIDEO_BANK_VERSION.to_le_bytes());
        let t = &self.thresholds;
        out.push(t.quality);
        out.extend_from_slice(&(t.distance as u16).to_le_bytes());
        out.extend_from_slice(&t.min_query_percent.to_le_bytes());
        out.extend_from_slice(&t.min_compared_percent.to_le_bytes());
        put_text(&mut out, &self.name);
        out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
        for l in &labels {
            put_text(&mut out, l);
        }
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&(e.labels.len() as u16).to_le_bytes());
            for l in &e.labels {
                out.extend_from_slice(&label_index[l.as_str()].to_le_bytes());
            }
            put_text(&mut out, e.source_id.as_deref().unwrap_or(""));
            out.extend_from_slice(&(e.features.len() as u32).to_le_bytes());
            for f in &e.features {
                out.extend_from_slice(&(f.frame_number as u32).to_le_bytes());
                out.push(f.quality);
                out.extend_from_slice(&f.hash.0);
                out.extend_from_slice(&f.timestamp.to_le_bytes());
            }
        }
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Decodes a binary video bank file, checking its checksum, every count
    /// against the bytes present, and every field, before it allocates.
    pub fn from_bytes(bytes: &[u8]) -> Result<VideoBank, BankError> {
        if bytes.len() < 8 || &bytes[..8] != VIDEO_BANK_MAGIC {
            return Err(BankError::NotABank);
        }
        if bytes.len() < 8 + 2 + 32 {
            return Err(BankError::Malformed { offset: bytes.len(), reason: "file ends inside the header".into() });
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VIDEO_BANK_VERSION {
            return Err(BankError::UnsupportedVersion(version));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != checksum {
            return Err(BankError::Checksum);
        }
        let mut c = Cursor { bytes: body, pos: 10 };
        let quality = c.u8()?;
        let distance = u32::from(c.u16()?);
        let min_query_percent = c.f64()?;
        let min_compared_percent = c.f64()?;
        let thresholds = VpdqThresholds { quality, distance, min_query_percent, min_compared_percent };
        check_thresholds(&thresholds).map_err(|reason| c.err(reason))?;
        let name = c.text("bank name")?;
        let label_count = c.u32()? as usize;
        c.need(label_count.saturating_mul(2), "label table")?;
        let labels: Vec<String> = (0..label_count).map(|_| c.text("label")).collect::<Result<_, _>>()?;
        let count = c.u64()?;
        if count > MAX_VIDEOS {
            return Err(BankError::TooManyEntries { count, limit: MAX_VIDEOS });
        }
        // Each video takes at least its three counts.
        c.need((count as usize).saturating_mul(2 + 2 + 4), "videos")?;
        let mut entries = Vec::with_capacity(count as usize);
        let mut frames_total = 0u64;
        for _ in 0..count {
            let k = c.u16()? as usize;
            if k > MAX_LABELS_PER_ENTRY {
                return Err(c.err(format!("video has {k} labels (limit {MAX_LABELS_PER_ENTRY})")));
            }
            let mut entry_labels = BTreeSet::new();
            for _ in 0..k {
                let i = c.u32()? as usize;
                let label = labels.get(i).ok_or_else(|| c.err(format!("label index {i} out of range")))?;
                entry_labels.insert(label.clone());
            }
            let source = c.text("source id")?;
            let n = c.u32()? as usize;
            frames_total += n as u64;
            if n == 0 || n > frankly_hash::MAX_VPDQ_FEATURES || frames_total > MAX_VIDEO_BANK_FRAMES {
                return Err(c.err(format!("video claims {n} frames ({frames_total} in the bank so far)")));
            }
            c.need(n * FRAME_BYTES, "frames")?;
            let mut features = Vec::with_capacity(n);
            for _ in 0..n {
                let frame_number = u64::from(c.u32()?);
                let quality = c.u8()?;
                let mut hash = [0u8; 32];
                hash.copy_from_slice(c.take(32)?);
                let timestamp = c.f64()?;
                features.push(VpdqFeature { frame_number, quality, hash: PdqHash(hash), timestamp });
            }
            let entry =
                VideoEntry { features, labels: entry_labels, source_id: (!source.is_empty()).then_some(source) };
            check_entry(&entry).map_err(|reason| c.err(reason))?;
            entries.push(entry);
        }
        if c.pos != body.len() {
            return Err(c.err(format!("{} unexpected bytes after the videos", body.len() - c.pos)));
        }
        Ok(VideoBank { name, thresholds, entries })
    }
}

/// A banked video that a query matched.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VideoMatch {
    /// The bank's name.
    pub bank: String,
    /// The video's position in its bank.
    pub video: usize,
    /// The video's source id.
    pub source_id: Option<String>,
    /// The video's labels.
    pub labels: Vec<String>,
    /// Share of the query's usable frames that match a frame of the video.
    pub query_percent: f64,
    /// Share of the video's usable frames that match a frame of the query.
    pub compared_percent: f64,
    /// The query's frames (frame numbers) that matched.
    pub query_frames: Vec<u64>,
}

#[derive(Debug)]
struct IndexedVideoBank {
    bank: VideoBank,
    /// Each video's usable hashes (unique, at or above the bank's quality).
    usable: Vec<Vec<PdqHash>>,
    /// The video of each indexed frame.
    owner: Vec<u32>,
    /// Every usable frame of every video.
    index: HammingIndex,
}

/// Video banks with an exact PDQ index over all their usable frames, ready
/// to answer vPDQ queries; immutable, so queries can run in parallel.
///
/// A query finds candidate videos through the index, then applies vPDQ's
/// rule to each candidate exactly as [`crate::vpdq::match_brute`] does, so
/// the answer is the brute-force answer over every banked video (tested).
/// When the rule asks for a share `p` > 0 of the query's `n` usable frames,
/// a matching video matches at least `need` of them (the least count whose
/// percentage reaches `p`), so probing any `n - need + 1` query frames is
/// certain to hit every matching video: with HMA's 80 %, 13 of 60 frames.
#[derive(Debug)]
pub struct VideoMatcher {
    banks: Vec<IndexedVideoBank>,
}

impl VideoMatcher {
    /// Indexes each bank.
    pub fn new(banks: Vec<VideoBank>) -> Self {
        let banks = banks
            .into_iter()
            .map(|bank| {
                let usable: Vec<Vec<PdqHash>> =
                    bank.entries.iter().map(|e| usable_hashes(&e.features, bank.thresholds.quality)).collect();
                let mut owner = Vec::new();
                let mut words = Vec::new();
                for (v, hashes) in usable.iter().enumerate() {
                    owner.extend(std::iter::repeat_n(v as u32, hashes.len()));
                    words.extend(hashes.iter().map(PdqHash::to_words));
                }
                let index = HammingIndex::new(frankly_hash::PDQ_BITS, words);
                IndexedVideoBank { bank, usable, owner, index }
            })
            .collect();
        VideoMatcher { banks }
    }

    /// The banks.
    pub fn banks(&self) -> impl Iterator<Item = &VideoBank> {
        self.banks.iter().map(|b| &b.bank)
    }

    /// Every banked video the query matches under its bank's thresholds,
    /// best first (query share, then compared share, then bank and video).
    pub fn query(&self, features: &[VpdqFeature]) -> Vec<VideoMatch> {
        self.query_with(features, None)
    }

    /// [`VideoMatcher::query`] with other distance and percentage thresholds
    /// for every bank (the quality threshold stays each bank's: it decides
    /// which frames were indexed).
    pub fn query_with(&self, features: &[VpdqFeature], thresholds: Option<&VpdqThresholds>) -> Vec<VideoMatch> {
        let mut out = Vec::new();
        for b in &self.banks {
            let rule =
                VpdqThresholds { quality: b.bank.thresholds.quality, ..*thresholds.unwrap_or(&b.bank.thresholds) };
            let usable: Vec<&VpdqFeature> = usable_features(features, rule.quality).collect();
            let Some(probes) = probe_count(usable.len(), rule.min_query_percent) else { continue };
            let query: Vec<PdqHash> = usable.iter().map(|f| f.hash).collect();
            let mut candidates = BTreeSet::new();
            for k in 0..probes {
                // Spread the probes over the video; any `probes` frames do.
                let frame = &query[k * query.len() / probes];
                candidates
                    .extend(b.index.range(&frame.to_words(), rule.distance).iter().map(|h| b.owner[h.id as usize]));
            }
            for v in candidates {
                let v = v as usize;
                let m = percentages(&query, &b.usable[v], rule.distance);
                if !m.is_match(&rule) {
                    continue;
                }
                let entry = &b.bank.entries[v];
                let near = |h: &PdqHash| b.usable[v].iter().any(|c| c.distance(h) <= rule.distance);
                out.push(VideoMatch {
                    bank: b.bank.name.clone(),
                    video: v,
                    source_id: entry.source_id.clone(),
                    labels: entry.labels.iter().cloned().collect(),
                    query_percent: m.query_percent,
                    compared_percent: m.compared_percent,
                    query_frames: usable.iter().filter(|f| near(&f.hash)).map(|f| f.frame_number).collect(),
                });
            }
        }
        out.sort_by(|a, b| {
            (b.query_percent, b.compared_percent)
                .partial_cmp(&(a.query_percent, a.compared_percent))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| (&a.bank, a.video).cmp(&(&b.bank, b.video)))
        });
        out
    }
}

/// How many of a query's `n` usable frames must be probed so that every
/// video matching at least `min_percent` of them is found; `None` when no
/// video can match (no usable frame, or a share over 100 %).
fn probe_count(n: usize, min_percent: f64) -> Option<usize> {
    // At least one query frame matches in any match (the relation is
    // symmetric: no query frame matched means no compared frame matched).
    let need = (1..=n).find(|&m| percent(m, n) >= min_percent)?;
    Some(n - need + 1)
}

/// Labels by count, for `bank info`.
impl VideoBank {
    /// Distinct labels and how many videos carry each.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_count_is_the_pigeonhole_bound() {
        assert_eq!(probe_count(60, 80.0), Some(13));
        assert_eq!(probe_count(60, 0.0), Some(60));
        assert_eq!(probe_count(60, 100.0), Some(1));
        assert_eq!(probe_count(3, 66.67), Some(1));
        assert_eq!(probe_count(3, 66.0), Some(2));
        assert_eq!(probe_count(0, 80.0), None);
        assert_eq!(probe_count(10, 100.5), None);
    }
}
