//! Changes to banks, as the change log records them: what every instance
//! replays to keep its index current, and what bank versions count.

/// One kind of change. Each bumps its bank's version by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A bank was created.
    CreateBank,
    /// A bank was renamed or its `matching_enabled_ratio` changed.
    UpdateBank,
    /// A bank was deleted with its content.
    DeleteBank,
    /// Content was added.
    Add,
    /// Content that matched stopped matching (`disable_until_ts` set).
    Disable,
    /// Content that did not match matches again (re-enabled, or its
    /// `disable_until_ts` passed).
    Enable,
    /// Content changed in a way that does not change what it matches (its
    /// note, or a later re-enable time).
    Update,
    /// Content was deleted.
    Delete,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [ChangeKind; 8] = [
        ChangeKind::CreateBank,
        ChangeKind::UpdateBank,
        ChangeKind::DeleteBank,
        ChangeKind::Add,
        ChangeKind::Disable,
        ChangeKind::Enable,
        ChangeKind::Update,
        ChangeKind::Delete,
    ];

    /// Its name in the log.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::CreateBank => "create-bank",
            ChangeKind::UpdateBank => "update-bank",
            ChangeKind::DeleteBank => "delete-bank",
            ChangeKind::Add => "add",
            ChangeKind::Disable => "disable",
            ChangeKind::Enable => "enable",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind of a change of `disable_until_ts` from `old` to `new`, seen
    /// at Unix time `now` (HMA's rule: 0 never matches, 1 always does, any
    /// other value from that time on).
    pub fn of_disable_change(old: i64, new: i64, now: i64) -> ChangeKind {
        match (crate::is_enabled_at(old, now), crate::is_enabled_at(new, now)) {
            (true, false) => ChangeKind::Disable,
            (false, true) => ChangeKind::Enable,
            _ => ChangeKind::Update,
        }
    }
}

/// Most labels on one banked content (a device bank's limit per entry).
pub const MAX_CONTENT_LABELS: usize = frankly_bank::MAX_LABELS_PER_ENTRY;

/// Checks content labels: at most [`MAX_CONTENT_LABELS`], each 1 to
/// [`frankly_bank::MAX_TEXT_BYTES`] bytes of printable text without commas
/// (labels travel in CSV exports); returns them sorted and deduplicated.
pub fn check_labels(labels: &[String]) -> Result<Vec<String>, String> {
    if labels.len() > MAX_CONTENT_LABELS {
        return Err(format!("{} labels given; at most {MAX_CONTENT_LABELS} per content", labels.len()));
    }
    let mut out = Vec::with_capacity(labels.len());
    for label in labels {
        if label.is_empty() || label.len() > frankly_bank::MAX_TEXT_BYTES {
            return Err(format!("a label is 1 to {} bytes, not {}", frankly_bank::MAX_TEXT_BYTES, label.len()));
        }
        if label.chars().any(|c| c.is_control() || c == ',') {
            return Err(format!("label {label:?} contains a comma or a control character"));
        }
        out.push(label.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_disable_changes_are_classified() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.name()), Some(k));
        }
        assert_eq!(ChangeKind::parse("nope"), None);
        assert_eq!(ChangeKind::of_disable_change(1, 0, 100), ChangeKind::Disable);
        assert_eq!(ChangeKind::of_disable_change(0, 1, 100), ChangeKind::Enable);
        assert_eq!(ChangeKind::of_disable_change(1, 500, 100), ChangeKind::Disable);
        assert_eq!(ChangeKind::of_disable_change(500, 600, 100), ChangeKind::Update);
        assert_eq!(ChangeKind::of_disable_change(1, 50, 100), ChangeKind::Update);
    }

    #[test]
    fn labels_are_bounded_and_normalised() {
        assert_eq!(check_labels(&["b".into(), "a".into(), "b".into()]).unwrap(), ["a", "b"]);
        assert!(check_labels(&[String::new()]).is_err());
        assert!(check_labels(&["a,b".into()]).unwrap_err().contains("comma"));
        assert!(check_labels(&["x".repeat(257)]).is_err());
        assert!(check_labels(&vec!["a".to_owned(); 65]).is_err());
    }
}
