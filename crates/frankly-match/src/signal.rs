//! Signals as HMA's clients write them, with HMA's error messages.

use frankly_bank::{SignalType, Words};

/// Parses `text` as a `signal` hash the way python-threatexchange validates
/// it, returning the hash and its normalised text. PDQ: exactly 64
/// lower-case hex digits (`invalid PDQ hash` otherwise); `video_md5`:
/// trimmed and lower-cased, then 32 hex digits. Other frankly types take
/// their `frankly hash` form.
pub fn parse_signal(signal: SignalType, text: &str) -> Result<(Words, String), String> {
    let hex_of =
        |t: &str, digits: usize| t.len() == digits && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let normalised = match signal {
        SignalType::Pdq if hex_of(text, 64) => text.to_owned(),
        SignalType::Pdq => return Err("invalid PDQ hash".into()),
        SignalType::VideoMd5 => {
            let t = text.trim().to_ascii_lowercase();
            if !hex_of(&t, 32) {
                return Err(format!("'{}' is not a valid MD5 hash", text.escape_default()));
            }
            t
        }
        other => other.format_hash(&other.parse_hash(text).map_err(|e| e.to_string())?),
    };
    let words = signal.parse_hash(&normalised).map_err(|e| e.to_string())?;
    Ok((words, normalised))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hma_s_rules_and_messages() {
        let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        assert_eq!(parse_signal(SignalType::Pdq, pdq).unwrap().1, pdq);
        for bad in ["", "banana", &pdq.to_uppercase(), &format!("{pdq}\n"), &pdq[1..], &format!("{pdq}0")] {
            assert_eq!(parse_signal(SignalType::Pdq, bad).unwrap_err(), "invalid PDQ hash", "{bad:?}");
        }
        let md5 = parse_signal(SignalType::VideoMd5, " CAB08B36195EDB1A1231D2D09FA450E0\n").unwrap();
        assert_eq!(md5.1, "cab08b36195edb1a1231d2d09fa450e0");
        assert_eq!(parse_signal(SignalType::VideoMd5, "xyz").unwrap_err(), "'xyz' is not a valid MD5 hash");
    }
}
