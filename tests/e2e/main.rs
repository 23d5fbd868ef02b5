//! End-to-end tests across crates: devices with Olm sessions (vodozemac)
//! and the shipped policies, models and a signed bank; the relay and the
//! moderation server of `frankly-server` over HTTP on a free port; reports,
//! review, audit. `honest.rs` runs the loop as it should go (and the demo
//! script); `adversaries.rs` has senders, reporters and relays that cheat,
//! each with the precise outcome asserted.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod adversaries;
mod honest;
mod salamander;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use frankly_client::Scanner;
use frankly_demo::{Directory, Messenger, Platform, load_scanner};
use frankly_policy::Audience;
use frankly_review::Role;
use frankly_server::User;

/// The repository's root (policies/, models/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Scanners for alice (adult), bob (teen) and mallory (research: logs,
/// never blocks, as a modified client would), built once: models load in
/// about a second each. The demo bank's content is the same for every
/// platform (the same photos' hashes; only the signing key differs).
fn scanners(platform: &Platform) -> &'static [Arc<Scanner>; 3] {
    static SCANNERS: OnceLock<[Arc<Scanner>; 3]> = OnceLock::new();
    SCANNERS.get_or_init(|| {
        let (p, m) = (repo().join("policies"), repo().join("models"));
        let load =
            |policy, audience| load_scanner(&p, &m, policy, audience, platform.bank(), platform.video_bank()).unwrap();
        [load("adult", Audience::Adult), load("teen", Audience::Teen), load("research", Audience::Adult)]
    })
}

/// A server and three registered devices: alice and bob are contacts,
/// mallory is a stranger; conversations alice/bob and mallory/bob exist.
pub struct World {
    pub platform: Platform,
    pub directory: Directory,
    pub alice: Messenger,
    pub bob: Messenger,
    pub mallory: Messenger,
    /// An administrator who reads the queue in tests.
    pub viewer: User,
}

pub const AB: &str = "alice/bob";
pub const MB: &str = "mallory/bob";

impl World {
    pub async fn new() -> World {
        let platform = Platform::start(None, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let [a, b, m] = scanners(&platform).clone();
        let mut directory = Directory::new();
        let mut alice = device(&platform, &mut directory, "alice", "phone", a).await;
        let mut bob = device(&platform, &mut directory, "bob", "phone", b).await;
        let mallory = device(&platform, &mut directory, "mallory", "phone", m).await;
        alice.add_contact("bob");
        bob.add_contact("alice");
        platform.create_conversation(AB, &["alice", "bob"]).await.unwrap();
        platform.create_conversation(MB, &["mallory", "bob"]).await.unwrap();
        let db = platform.state().db();
        let id = frankly_server::create_user(db, "test", "viewer", "a long test password", Role::Admin).await.unwrap();
        let viewer = User { id, username: "viewer".into(), role: Role::Admin, reveal_media: false };
        World { platform, directory, alice, bob, mallory, viewer }
    }

    /// A moderator account.
    pub async fn moderator(&self) -> User {
        let db = self.platform.state().db();
        let id = frankly_server::create_user(db, "test", "mod", "a long test password", Role::Moderator).await.unwrap();
        User { id, username: "mod".into(), role: Role::Moderator, reveal_media: false }
    }

    /// Every report the moderation server queued, as a moderator sees it,
    /// oldest first (the server tells reporters nothing more than "received").
    pub async fn queued(&self) -> Vec<frankly_server::queue::ReportView> {
        let db = self.platform.state().db();
        let user = &self.viewer;
        let mut rows = frankly_server::queue::recent(db, user, 1000).await.unwrap();
        rows.sort_by_key(|r| r.id);
        let mut out = Vec::new();
        for r in rows {
            out.push(frankly_server::queue::view(db, user, r.id).await.unwrap());
        }
        out
    }

    /// The bytes of attachment `attachment` of message `message` of queued
    /// report `id`, as a moderator fetches them.
    pub async fn media(&self, id: i64, message: usize, attachment: usize) -> Vec<u8> {
        let db = self.platform.state().db();
        frankly_server::queue::media(db, &self.viewer, id, message, attachment).await.unwrap().0
    }
}

/// Registers device `device` of `user` with a scanner.
pub async fn device(
    platform: &Platform,
    directory: &mut Directory,
    user: &str,
    device: &str,
    scanner: Arc<Scanner>,
) -> Messenger {
    let token = platform.platform_token();
    Messenger::register(platform.url(), &token, user, device, scanner, directory, 51).await.unwrap()
}
