//! Sign-in defences. A stranger can neither guess passwords fast nor lock a
//! moderator out:
//!
//! - **Per address first.** At most [`LOGINS_PER_ADDRESS_PER_MINUTE`]
//!   attempts per client address (the TCP peer, or the last
//!   `X-Forwarded-For` hop when `trust_forwarded_for` is set); beyond that,
//!   429 without a password hash.
//! - **Per username, a delay, not a lock.** After
//!   [`FREE_FAILURES`] failures for one username within
//!   [`FAILURE_WINDOW_MS`], each further attempt waits 1 s, 2 s, 4 s … up to
//!   [`MAX_DELAY`] before its password is checked. The right password still
//!   signs in; a success clears the count.
//! - **Bounded.** The tables hold at most [`MAX_TRACKED`] addresses and
//!   usernames; past that, idle entries are dropped first, then new ones
//!   share one overflow entry (so the limit still applies, to all of them
//!   together).
//! - **Counted, summarised.** Failures are counted in
//!   `frankly_login_failures_total`, and the audit log gets one entry per
//!   username per window: the first failure, then a summary with the count
//!   when the window closes (not one row per try).
//! - **Sign-in CSRF.** The form's token is made by the server,
//!   `nonce ‖ expiry ‖ HMAC(key, nonce ‖ expiry)`, and must equal the
//!   cookie: an attacker cannot choose a matching pair.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ServerError;
use crate::db::Db;

/// Attempts per client address per minute.
pub const LOGINS_PER_ADDRESS_PER_MINUTE: u32 = 20;
/// Failures per username in a window before attempts are delayed.
pub const FREE_FAILURES: u32 = 5;
/// The window over which failures count (and are summarised), 10 minutes.
pub const FAILURE_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Longest delay before a delayed attempt is checked.
pub const MAX_DELAY: Duration = Duration::from_secs(16);
/// Most addresses and most usernames tracked.
pub const MAX_TRACKED: usize = 10_000;
/// How long a sign-in form is good for.
pub(crate) const LOGIN_FORM_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Default, Clone)]
struct Failures {
    window_start_ms: i64,
    count: u32,
    /// Whether the window's summary is still owed to the audit log.
    summarised: bool,
}

#[derive(Debug, Default)]
struct Address {
    minute_start_ms: i64,
    attempts: u32,
}

/// The sign-in defences' state (per instance).
#[derive(Debug)]
pub(crate) struct LoginGuard {
    addresses: Mutex<HashMap<String, Address>>,
    failures: Mutex<HashMap<String, Failures>>,
    csrf_key: Zeroizing<[u8; 32]>,
}

const OVERFLOW: &str = "\u{0}overflow";

fn slot<'a, V: Default>(map: &'a mut HashMap<String, V>, key: &str, idle: impl Fn(&V) -> bool) -> &'a mut V {
    if !map.contains_key(key) && map.len() >= MAX_TRACKED {
        map.retain(|_, v| !idle(v));
        if map.len() >= MAX_TRACKED {
            return map.entry(OVERFLOW.to_owned()).or_default();
        }
    }
    map.entry(key.to_owned()).or_default()
}

impl LoginGuard {
    pub(crate) fn new(csrf_key: Zeroizing<[u8; 32]>) -> LoginGuard {
        LoginGuard { addresses: Mutex::default(), failures: Mutex::default(), csrf_key }
    }

    /// Counts an attempt from `address`; false when over the limit.
    pub(crate) fn address_allowed(&self, address: Option<IpAddr>, now_ms: i64) -> bool {
        let key = address.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let Ok(mut map) = self.addresses.lock() else { return false };
        let a = slot(&mut map, &key, |a: &Address| now_ms - a.minute_start_ms >= 60_000);
        if now_ms - a.minute_start_ms >= 60_000 {
            *a = Address { minute_start_ms: now_ms, attempts: 0 };
        }
        a.attempts = a.attempts.saturating_add(1);
        a.attempts <= LOGINS_PER_ADDRESS_PER_MINUTE
    }

    /// How long an attempt for `username` waits before its password is checked.
    pub(crate) fn delay(&self, username: &str, now_ms: i64) -> Duration {
        let Ok(map) = self.failures.lock() else { return MAX_DELAY };
        match map.get(username) {
            Some(f) if now_ms - f.window_start_ms < FAILURE_WINDOW_MS && f.count >= FREE_FAILURES => {
                let doublings = (f.count - FREE_FAILURES).min(16);
                Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    /// Records a failure; returns whether it is the first of its window
    /// (which the audit log records) and the summary of a window that just
    /// closed, if one is owed.
    fn failed(&self, username: &str, now_ms: i64) -> (bool, Option<(i64, u32)>) {
        let Ok(mut map) = self.failures.lock() else { return (false, None) };
        let f = slot(&mut map, username, |f: &Failures| now_ms - f.window_start_ms >= FAILURE_WINDOW_MS);
        let mut closed = None;
        if now_ms - f.window_start_ms >= FAILURE_WINDOW_MS {
            if f.count > 1 && !f.summarised {
                closed = Some((f.window_start_ms, f.count));
            }
            *f = Failures { window_start_ms: now_ms, count: 0, summarised: false };
        }
        f.count = f.count.saturating_add(1);
        (f.count == 1, closed)
    }

    pub(crate) fn succeeded(&self, username: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(username);
        }
    }

    /// Windows that have closed with more than one failure, marked as
    /// summarised; idle entries are dropped.
    fn closed_windows(&self, now_ms: i64) -> Vec<(String, i64, u32)> {
        let Ok(mut map) = self.failures.lock() else { return Vec::new() };
        let mut out = Vec::new();
        for (name, f) in map.iter_mut() {
            if now_ms - f.window_start_ms >= FAILURE_WINDOW_MS && f.count > 1 && !f.summarised {
                f.summarised = true;
                out.push((name.clone(), f.window_start_ms, f.count));
            }
        }
        map.retain(|_, f| now_ms - f.window_start_ms < 2 * FAILURE_WINDOW_MS);
        if let Ok(mut a) = self.addresses.lock() {
            a.retain(|_, a| now_ms - a.minute_start_ms < 60_000);
        }
        out
    }

    fn mac(&self, nonce: &[u8], expires_ms: i64) -> [u8; 16] {
        // HMAC takes keys of any length.
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(self.csrf_key.as_ref()).unwrap_or_else(|_| unreachable!());
        mac.update(b"frankly login form v1");
        mac.update(nonce);
        mac.update(&expires_ms.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A new sign-in form token.
    pub(crate) fn form_token(&self, now_ms: i64) -> Result<String, ServerError> {
        let nonce = crate::secrets::random32()?;
        let expires = now_ms.saturating_add(LOGIN_FORM_MS);
        let mut bytes = nonce[..16].to_vec();
        bytes.extend_from_slice(&expires.to_be_bytes());
        bytes.extend_from_slice(&self.mac(&nonce[..16], expires));
        Ok(hex::encode(bytes))
    }

    /// Whether `token` is one this server made and has not expired.
    pub(crate) fn form_token_valid(&self, token: &str, now_ms: i64) -> bool {
        let mut bytes = [0u8; 40];
        if hex::decode_to_slice(token, &mut bytes).is_err() {
            return false;
        }
        let (nonce, rest) = bytes.split_at(16);
        let (expires, mac) = rest.split_at(8);
        let expires = i64::from_be_bytes(expires.try_into().unwrap_or_default());
        let good = subtle::ConstantTimeEq::ct_eq(&self.mac(nonce, expires)[..], mac);
        bool::from(good) && now_ms < expires
    }
}

/// Records a failed sign-in: the metric always, the audit log for the first
/// failure of the window and for the summary of a window that closed.
pub(crate) async fn record_failure(
    guard: &LoginGuard,
    db: &Db,
    metrics: &crate::Metrics,
    username: &str,
    now_ms: i64,
) -> Result<(), ServerError> {
    metrics.login_failures.inc();
    let (first, closed) = guard.failed(username, now_ms);
    if let Some((start, count)) = closed {
        summarise(db, username, start, count).await?;
    }
    if first {
        crate::audit::record(db, username, "login-failed", &format!("user:{username}"), "first failure of this window")
            .await?;
    }
    Ok(())
}

async fn summarise(db: &Db, username: &str, start_ms: i64, count: u32) -> Result<(), ServerError> {
    crate::audit::record(
        db,
        username,
        "login-failed",
        &format!("user:{username}"),
        &format!("{count} failed sign-ins in the 10 minutes from {start_ms} (Unix ms)"),
    )
    .await
}

/// Writes the summaries of windows that have closed (run by the server's
/// chores every 30 s).
pub(crate) async fn flush(guard: &LoginGuard, db: &Db, now_ms: i64) -> Result<(), ServerError> {
    for (name, start, count) in guard.closed_windows(now_ms) {
        summarise(db, &name, start, count).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn guard() -> LoginGuard {
        LoginGuard::new(Zeroizing::new([9u8; 32]))
    }

    #[test]
    fn form_tokens_are_the_servers_own_and_expire() {
        let g = guard();
        let t = g.form_token(1_000).unwrap();
        assert!(g.form_token_valid(&t, 2_000));
        assert!(!g.form_token_valid(&t, 1_000 + LOGIN_FORM_MS));
        assert!(!guard_with(7).form_token_valid(&t, 2_000), "another server's key");
        assert!(!g.form_token_valid(&"00".repeat(40), 2_000), "an attacker's choice");
        assert!(!g.form_token_valid("zz", 2_000));
    }

    fn guard_with(b: u8) -> LoginGuard {
        LoginGuard::new(Zeroizing::new([b; 32]))
    }

    #[test]
    fn failures_delay_but_never_lock_and_the_tables_are_bounded() {
        let g = guard();
        for i in 0..FREE_FAILURES {
            assert_eq!(g.delay("mod1", 0), Duration::ZERO, "{i}");
            g.failed("mod1", 0);
        }
        assert_eq!(g.delay("mod1", 0), Duration::from_secs(1));
        for _ in 0..30 {
            g.failed("mod1", 0);
        }
        assert_eq!(g.delay("mod1", 0), MAX_DELAY);
        assert_eq!(g.delay("mod1", FAILURE_WINDOW_MS), Duration::ZERO, "the window ends");
        g.succeeded("mod1");
        assert_eq!(g.delay("mod1", 0), Duration::ZERO);
        for i in 0..(MAX_TRACKED + 50) {
            g.failed(&format!("user{i}"), 0);
        }
        assert!(g.failures.lock().unwrap().len() <= MAX_TRACKED + 1);
        for i in 0..(MAX_TRACKED + 50) {
            g.address_allowed(Some(IpAddr::from([10, 0, (i >> 8) as u8, i as u8])), 0);
        }
        assert!(g.addresses.lock().unwrap().len() <= MAX_TRACKED + 1);
    }

    #[test]
    fn addresses_are_limited_per_minute() {
        let g = guard();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        for _ in 0..LOGINS_PER_ADDRESS_PER_MINUTE {
            assert!(g.address_allowed(ip, 0));
        }
        assert!(!g.address_allowed(ip, 0));
        assert!(g.address_allowed(Some(IpAddr::from([192, 0, 2, 2])), 0), "another address");
        assert!(g.address_allowed(ip, 60_000), "the next minute");
    }

    #[test]
    fn a_window_is_summarised_once() {
        let g = guard();
        assert_eq!(g.failed("a", 0), (true, None));
        assert_eq!(g.failed("a", 1), (false, None));
        assert_eq!(g.failed("a", 2), (false, None));
        assert_eq!(g.closed_windows(FAILURE_WINDOW_MS), vec![("a".to_owned(), 0, 3)]);
        assert!(g.closed_windows(FAILURE_WINDOW_MS + 1).is_empty());
        // The next failure opens a new window; nothing more is owed.
        assert_eq!(g.failed("a", FAILURE_WINDOW_MS + 5), (true, None));
    }
}
