//! vPDQ features (the PDQ hash of each sampled frame of a video) and their
//! text forms: Meta's vPDQ file and HMA's signal string. Hashing a video is
//! `frankly-video`'s; the match rule and banks are `frankly-bank`'s.

use crate::PdqHash;

/// Most lines read from one vPDQ file (ten hours of 30 frames per second).
pub const MAX_VPDQ_FEATURES: usize = 1_080_000;
/// Longest HMA signal string read, in bytes (each feature takes about 74).
pub const MAX_HMA_SIGNAL_BYTES: usize = MAX_VPDQ_FEATURES * 96;

/// One hashed frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VpdqFeature {
    /// Frame number, from 0, in decoder output order.
    pub frame_number: u64,
    /// PDQ quality, 0 to 100.
    pub quality: u8,
    /// The frame's PDQ hash.
    #[serde(serialize_with = "hex_hash")]
    pub hash: PdqHash,
    /// Seconds from the start: the presentation time, or with
    /// `frankly_video::Timestamps::FrameRate` Meta's frame number ÷ frame rate.
    pub timestamp: f64,
}

fn hex_hash<S: serde::Serializer>(hash: &PdqHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hash.to_string())
}

/// Writes features in Meta's file format: one line per frame,
/// `frame_number,quality,pdq_hex,timestamp` with three decimals.
pub fn format_meta(features: &[VpdqFeature]) -> String {
    let mut out = String::with_capacity(features.len() * 80);
    for f in features {
        out.push_str(&format!("{},{},{},{:.3}\n", f.frame_number, f.quality, f.hash, f.timestamp));
    }
    out
}

/// Why a vPDQ file or signal did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseVpdqError {
    /// A line is not `frame,quality,hash,timestamp`.
    #[error("line {line}: {reason}")]
    Line {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No feature at all.
    #[error("no vPDQ features")]
    Empty,
    /// More than [`MAX_VPDQ_FEATURES`].
    #[error("more than {limit} vPDQ features")]
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The HMA signal string is over [`MAX_HMA_SIGNAL_BYTES`].
    #[error("vPDQ signal is {bytes} bytes long, over the limit of {limit}")]
    TooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// HMA's JSON form is not a list of strings.
    #[error("not HMA's vPDQ signal (a JSON list of \"pdq_hex,quality,timestamp\" strings): {0}")]
    Json(String),
}

/// Reads Meta's file format (blank lines and `#` comments, as `frankly hash`
/// prints before each video, are skipped).
pub fn parse_meta(text: &str) -> Result<Vec<VpdqFeature>, ParseVpdqError> {
    let mut features = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if features.len() == MAX_VPDQ_FEATURES {
            return Err(ParseVpdqError::TooMany { limit: MAX_VPDQ_FEATURES });
        }
        let bad = |reason: String| ParseVpdqError::Line { line: i + 1, reason };
        let (frame, quality, hash, timestamp) = match line.split(',').collect::<Vec<_>>()[..] {
            [frame, quality, hash, timestamp] => (frame, quality, hash, timestamp),
            ref fields => return Err(bad(format!("expected 4 comma-separated fields, found {}", fields.len()))),
        };
        let frame_number = frame.parse().map_err(|_| bad(format!("frame number {frame:?} is not a number")))?;
        features.push(feature(frame_number, quality, hash, timestamp).map_err(bad)?);
    }
    if features.is_empty() {
        return Err(ParseVpdqError::Empty);
    }
    Ok(features)
}

/// One feature from its text fields, or what is wrong with them.
fn feature(frame_number: u64, quality: &str, hash: &str, timestamp: &str) -> Result<VpdqFeature, String> {
    Ok(VpdqFeature {
        frame_number,
        quality: parse_quality(quality)?,
        hash: hash.parse().map_err(|e| format!("{e}"))?,
        timestamp: parse_timestamp(timestamp)?,
    })
}

fn parse_quality(s: &str) -> Result<u8, String> {
    s.parse::<u8>().ok().filter(|&q| q <= 100).ok_or_else(|| format!("quality {s:?} is not 0 to 100"))
}

fn parse_timestamp(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .ok_or_else(|| format!("timestamp {s:?} is not a non-negative number"))
}

/// HMA's vPDQ signal string: a JSON list of `"pdq_hex,quality,timestamp"`
/// (python-threatexchange's `vpdq_to_json`; frame numbers are not kept).
pub fn to_hma_signal(features: &[VpdqFeature]) -> String {
    let items: Vec<String> = features.iter().map(|f| format!("{},{},{:.3}", f.hash, f.quality, f.timestamp)).collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

/// Reads HMA's vPDQ signal string; frame numbers are given in list order.
pub fn parse_hma_signal(signal: &str) -> Result<Vec<VpdqFeature>, ParseVpdqError> {
    if signal.len() > MAX_HMA_SIGNAL_BYTES {
        return Err(ParseVpdqError::TooLong { bytes: signal.len(), limit: MAX_HMA_SIGNAL_BYTES });
    }
    let items: Vec<String> = serde_json::from_str(signal).map_err(|e| ParseVpdqError::Json(e.to_string()))?;
    if items.len() > MAX_VPDQ_FEATURES {
        return Err(ParseVpdqError::TooMany { limit: MAX_VPDQ_FEATURES });
    }
    let mut features = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bad = |reason: String| ParseVpdqError::Line { line: i + 1, reason };
        let (hash, quality, timestamp) = match item.split(',').collect::<Vec<_>>()[..] {
            [hash, quality, timestamp] => (hash, quality, timestamp),
            ref fields => return Err(bad(format!("expected 3 comma-separated fields, found {}", fields.len()))),
        };
        features.push(feature(i as u64, quality, hash, timestamp).map_err(bad)?);
    }
    if features.is_empty() {
        return Err(ParseVpdqError::Empty);
    }
    Ok(features)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(n: u64, quality: u8, byte: u8) -> VpdqFeature {
        VpdqFeature { frame_number: n, quality, hash: PdqHash([byte; 32]), timestamp: n as f64 / 30.0 }
    }

    #[test]
    fn meta_and_hma_formats_round_trip_and_bad_lines_are_named() {
        let features = vec![feature(0, 100, 0x0f), feature(1, 49, 0xf0)];
        let text = format_meta(&features);
        assert_eq!(text.lines().next(), Some(&*format!("0,100,{},0.000", PdqHash([0x0f; 32]))));
        let back = parse_meta(&text).expect("parse");
        assert_eq!(format_meta(&back), text);
        let hma = parse_hma_signal(&to_hma_signal(&features)).expect("parse hma");
        assert_eq!((hma[1].quality, hma[1].hash), (49, PdqHash([0xf0; 32])));

        let err = parse_meta("0,100,abc,0.0\n").unwrap_err();
        assert!(matches!(err, ParseVpdqError::Line { line: 1, .. }), "{err}");
        let err = parse_meta(&format!("0,101,{},0.0", PdqHash::ZERO)).unwrap_err();
        assert!(err.to_string().contains("quality"), "{err}");
        let err = parse_meta(&format!("0,100,{},-1", PdqHash::ZERO)).unwrap_err();
        assert!(err.to_string().contains("timestamp"), "{err}");
        assert_eq!(parse_meta("\n\n"), Err(ParseVpdqError::Empty));
        assert!(matches!(parse_hma_signal("{}"), Err(ParseVpdqError::Json(_))));
    }
}
