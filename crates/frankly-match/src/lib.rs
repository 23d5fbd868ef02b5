//! The matching service's domain: banks being curated, their content and
//! signals, the exact live indexes over them, and HMA's lookup rules.
//!
//! No HTTP and no SQL: `frankly-server` stores banks and content in its
//! database, turns each committed change into a call here, and serves
//! HMA's API over this state. Every lookup is exact (the
//! [`frankly_bank::LiveIndex`] of each signal type returns what a linear
//! scan returns) and sees every change applied before it: there is no
//! periodic rebuild to wait for. Rebuilds of an index's base run beside
//! lookups ([`MatchState::snapshot`], [`MatchState::install`]).

mod change;
mod coinflip;
mod hashing;
mod name;
mod signal;
mod state;

pub use change::{ChangeKind, MAX_CONTENT_LABELS, check_labels};
pub use coinflip::{entropy_random, python_random};
pub use hashing::{ContentType, HMA_PDQ_QUALITY_THRESHOLD, HashError, hash_content, select_signal_types};
pub use name::{BankName, MAX_BANK_NAME_BYTES, NameError};
pub use signal::parse_signal;
pub use state::{
    BankId, BankInfo, ContentId, ContentInfo, LookupError, LookupOptions, MatchState, RawMatch, SignalStatus,
    is_enabled_at,
};
