//! The whole frankly loop in one place, over a real E2EE protocol.
//!
//! Users' devices ([`Messenger`]) hold Olm sessions from `vodozemac`
//! (Matrix's audited implementation), scan with `frankly-client` under the
//! shipped policies before encrypting and after decrypting, and send through
//! the relay of `frankly-server`, which tags each commitment. A user reports
//! a message with its context; the moderation server opens the sealed
//! report, verifies every franked message, queues it, and a moderator
//! decides. [`run`] plays that story and narrates what each party saw and
//! learned; the end-to-end tests in the repository's `tests/` drive the same
//! pieces with misbehaving senders, reporters and relays.
//!
//! # How franking rides on Olm
//!
//! Olm has no associated-data input, so the commitment is bound inside the
//! encrypted payload and compared, after decryption, with the one the relay
//! tagged ([`e2ee`] explains the layout and why it is equivalent here).
//!
//! # What is simulated
//!
//! Everything cryptographic and everything on the server is the real code.
//! What stands in for a messenger's other parts: the key directory (a
//! struct, in place of a key server and identity verification), and the
//! apps' user interfaces (the narration says what each would show).

mod assets;
mod demo;
pub mod e2ee;
mod messenger;
mod platform;
mod relay;

pub use assets::{
    BANK_LABEL, BANK_NAME, BANKED, CLIP, ORDINARY, Photo, VIDEO_BANK_NAME, demo_bank, demo_video_bank, disguise, pdq_of,
};
pub use demo::{DemoOptions, Running, Summary, run};
pub use e2ee::{Device, Directory, E2eeError};
pub use messenger::{Messenger, Received, Sent, ServerKeys, Shown};
pub use platform::{Platform, load_scanner};
pub use relay::{Exchange, MAX_RESPONSE_BYTES, Relay};

/// Why a step of the demo (or of a simulated device) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The E2EE layer refused.
    #[error("E2EE: {0}")]
    E2ee(#[from] E2eeError),
    /// The on-device module refused (franking check, policy, report).
    #[error("{0}")]
    Client(#[from] frankly_client::ClientError),
    /// The saved app state could not be read or written.
    #[error("device state: {0}")]
    State(#[from] frankly_client::StateError),
    /// A franking check failed on the device (delivery MAC).
    #[error("franking: {0}")]
    Franking(#[from] frankly_franking::FrankingError),
    /// The server refused a request, with its code and message.
    #[error("server refused ({status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's stable code.
        code: String,
        /// What it said.
        message: String,
        /// The message of a report that failed, if any.
        message_index: Option<usize>,
    },
    /// The server failed (the in-process one, during setup or review).
    #[error("server: {0}")]
    Server(#[from] frankly_server::ServerError),
    /// HTTP transport.
    #[error("HTTP: {0}")]
    Http(String),
    /// Setting up the demo (policies, models, bank, files).
    #[error("setup: {0}")]
    Setup(String),
    /// Writing the narration.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}
