//! Bank names as HMA allows them.

use std::fmt;

/// Longest bank name, in bytes (HMA sets none; a name is a path segment and
/// a key on every match).
pub const MAX_BANK_NAME_BYTES: usize = 128;

/// A bank name: `[A-Z_][A-Z0-9_]*`, the rule HMA's store enforces
/// (upper case, digits and underscores, no leading digit), at most
/// [`MAX_BANK_NAME_BYTES`]. Nothing with a path character, a dot or a space
/// gets through, so a name is safe in a URL, a file name and a log line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BankName(String);

/// Why a bank name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

impl BankName {
    /// Checks `name` against HMA's rule.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.len() > MAX_BANK_NAME_BYTES {
            return Err(NameError(format!(
                "Bank names must be at most {MAX_BANK_NAME_BYTES} bytes (this one is {})",
                name.len()
            )));
        }
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            // HMA's message, word for word.
            return Err(NameError("Bank names must be UPPER_WITH_UNDERSCORE".into()));
        }
        Ok(BankName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BankName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_caps_digits_and_underscores_pass() {
        for ok in ["A", "TEST_BANK", "NCMEC_2026_11", "_", "_0", "MY_TEST_BANK_01"] {
            assert_eq!(BankName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "0", "01_TEST_BANK", "my_test_bank", "Bank", "../ETC", "A/B", "A.B", "A B", "A-B", "É", "A\0"]
        {
            assert_eq!(BankName::parse(bad).unwrap_err().0, "Bank names must be UPPER_WITH_UNDERSCORE", "{bad:?}");
        }
        assert!(BankName::parse(&"A".repeat(MAX_BANK_NAME_BYTES)).is_ok());
        let long = BankName::parse(&"A".repeat(MAX_BANK_NAME_BYTES + 1)).unwrap_err();
        assert!(long.0.contains("at most 128 bytes"), "{long}");
    }
}
