//! The ThreatExchange dataset CSV, as python-threatexchange's `threatexchange
//! dataset -P --csv` writes it (`cli/dataset_cmd.py`): a header
//! `signal_type,signal_str,collab,category,tags`, then one row per signal
//! and collaboration; `tags` is space-separated. It carries every signal
//! type, so each bank reads the rows of its own type. Parsed with the `csv`
//! crate (a vPDQ `signal_str` is a quoted JSON list full of commas).

use std::collections::BTreeSet;

use crate::bank::{BankError, LineError, MAX_LABELS_PER_ENTRY, check_text};

/// Longest row read, in bytes: a vPDQ signal of the longest video, plus room
/// for the other columns.
pub const MAX_THREATEXCHANGE_ROW_BYTES: usize = frankly_hash::MAX_HMA_SIGNAL_BYTES + 16 * 1024;

/// One row.
pub(crate) struct Row {
    /// 1-based line number where the row starts (0 when writing).
    pub(crate) line: usize,
    /// `signal_type`, e.g. `pdq`, `vpdq`, `video_md5`.
    pub(crate) signal_type: String,
    /// `signal_str`.
    pub(crate) signal: String,
    /// `collab`, if not empty.
    pub(crate) collab: Option<String>,
    /// `category` and every tag.
    pub(crate) labels: BTreeSet<String>,
}

/// The rows of a dataset CSV; an error if the header does not name
/// `signal_type` and `signal_str`. Each row is read, or says what is wrong
/// with it.
pub(crate) fn rows(text: &str) -> Result<impl Iterator<Item = Result<Row, LineError>> + '_, BankError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let not_te = |reason: String| BankError::InvalidLine(LineError { line: 1, reason });
    let header = reader.headers().map_err(|e| not_te(format!("not a ThreatExchange dataset CSV: {e}")))?.clone();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(signal_type), Some(signal)) = (column("signal_type"), column("signal_str")) else {
        return Err(not_te(
            "not a ThreatExchange dataset CSV: the header must name signal_type and signal_str \
             (signal_type,signal_str,collab,category,tags)"
                .into(),
        ));
    };
    let (collab, category, tags) = (column("collab"), column("category"), column("tags"));
    Ok(reader.into_records().map(move |record| {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            LineError { line, reason: format!("not CSV: {e}") }
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let bad = |reason: String| LineError { line, reason };
        let bytes = record.as_slice().len();
        if bytes > MAX_THREATEXCHANGE_ROW_BYTES {
            return Err(bad(format!("row is {bytes} bytes long (limit {MAX_THREATEXCHANGE_ROW_BYTES})")));
        }
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).map(str::trim).unwrap_or("");
        let mut labels = BTreeSet::new();
        let category = field(category);
        for label in std::iter::once(category).chain(field(tags).split_whitespace()).filter(|l| !l.is_empty()) {
            check_text("label", label).map_err(bad)?;
            labels.insert(label.to_owned());
        }
        if labels.len() > MAX_LABELS_PER_ENTRY {
            return Err(bad(format!("{} labels (limit {MAX_LABELS_PER_ENTRY})", labels.len())));
        }
        let collab = field(collab);
        check_text("collab", collab).map_err(bad)?;
        Ok(Row {
            line,
            signal_type: field(Some(signal_type)).to_ascii_lowercase(),
            signal: field(Some(signal)).to_owned(),
            collab: (!collab.is_empty()).then(|| collab.to_owned()),
            labels,
        })
    }))
}

/// Writes rows with the header. Labels go in `tags`, so a label with a space
/// in it comes back as several.
pub(crate) fn write(rows: impl Iterator<Item = Row>) -> String {
    fn write_all(rows: impl Iterator<Item = Row>) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["signal_type", "signal_str", "collab", "category", "tags"])?;
        for row in rows {
            let tags = row.labels.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
            let collab = row.collab.as_deref().unwrap_or("");
            writer.write_record([row.signal_type.as_str(), &row.signal, collab, "", &tags])?;
        }
        Ok(writer.into_inner().map_err(|e| e.to_string())?)
    }
    // Writing strings to memory cannot fail.
    String::from_utf8(write_all(rows).unwrap_or_default()).unwrap_or_default()
}
