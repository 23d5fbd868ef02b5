//! Curation ships to devices: the banks curated over `/c` (or from the
//! review UI) as signed bank bundles, the existing `frankly-bundle` format
//! whose version is the bank's version (one more per change, so a device's
//! rollback check refuses an older bank), and as signed deltas from a
//! version a device holds.
//!
//! - `GET /v1/banks/<name>/bundle[?signal_type=pdq]`: the bundle of the
//!   bank's current version (signed by the server when it holds
//!   `bank_signing_key`), or the newest bundle signed offline and published
//!   with `frankly serve admin publish-bundle`.
//! - `GET /v1/banks/<name>/delta?from=V[&signal_type=pdq]`: a signed delta
//!   from version V to the current one (server-signed only).
//!
//! A bundle holds the bank's content that matches as logged (enabled, and
//! not waiting for a `disable_until_ts` to pass), one entry per distinct
//! hash with the union of its contents' labels. Negative banks are not
//! shipped: their rule (a match in one suppresses the query) is the
//! server's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use frankly_bank::{Bank, BankDelta, Entry, SignalType, SigningKey, VerifyingKey, Words};
use frankly_match::parse_signal;

use crate::hma::{HmaError, authorize, bad, fail};
use crate::match_store::{self, BankRow, Scope};
use crate::{AppState, Db, MATCH_SIGNAL_TYPES, ServerError};

/// Most changes a delta spans; from further back a device fetches the full
/// bundle (a delta that large is no smaller, and would cost the server a
/// read of that much change log).
pub const MAX_DELTA_CHANGES: i64 = 100_000;

/// Times a bundle is rebuilt when the bank changed while it was read.
const BUILD_ATTEMPTS: usize = 3;

/// The server's bundle signing key (if it signs online) and the bundles it
/// signed, newest version per bank and signal type.
#[derive(Debug)]
pub(crate) struct Feed {
    key: Option<SigningKey>,
    valid_secs: u64,
    cache: std::sync::Mutex<HashMap<(i64, SignalType), Arc<Signed>>>,
}

/// A bank version and its signed bundle.
#[derive(Debug)]
struct Signed {
    version: i64,
    bank: Bank,
    bytes: Bytes,
}

impl Feed {
    /// Reads `bank_signing_key` (refused unless only its owner can read
    /// it), if configured.
    pub(crate) fn load(config: &crate::Config) -> Result<Feed, ServerError> {
        let key = match &config.bank_signing_key {
            None => None,
            Some(path) => {
                crate::secrets::check_private(path)?;
                let text = zeroize::Zeroizing::new(
                    std::fs::read_to_string(path)
                        .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?,
                );
                Some(
                    frankly_bank::parse_signing_key(&text)
                        .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?,
                )
            }
        };
        Ok(Feed { key, valid_secs: config.bundle_valid_hours.saturating_mul(3600), cache: Default::default() })
    }
}

/// The routes, mounted with the match API.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/banks/{bank}/bundle", get(bundle)).route("/v1/banks/{bank}/delta", get(delta))
}

fn signal_of(q: &HashMap<String, String>) -> Result<(SignalType, u32), HmaError> {
    let name = q.get("signal_type").map_or("pdq", String::as_str);
    MATCH_SIGNAL_TYPES
        .into_iter()
        .find(|(s, _)| s.name() == name)
        .ok_or_else(|| bad(format!("No such SignalType '{name}'")))
}

async fn shipped_bank(state: &AppState, name: &str) -> Result<BankRow, HmaError> {
    let bank = match_store::bank(state.db(), name)
        .await?
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("bank '{name}' not found")))?;
    if bank.negative {
        return Err(fail(
            StatusCode::CONFLICT,
            format!(
                "bank '{name}' is a negative bank: it suppresses matches on the server and is not shipped to devices"
            ),
        ));
    }
    Ok(bank)
}

/// The bank as a device bank at its version: the content that matches as
/// logged, one entry per hash (labels united, the first content's id as
/// source), in canonical order. Read again if the bank changed meanwhile.
pub(crate) async fn device_bank(
    db: &Db,
    name: &str,
    signal: SignalType,
    threshold: u32,
) -> Result<(Bank, i64), ServerError> {
    for _ in 0..BUILD_ATTEMPTS {
        let Some(before) = match_store::bank(db, name).await? else { break };
        let rows = match_store::shipped_content(db, before.id, signal).await?;
        let Some(after) = match_store::bank(db, name).await? else { break };
        if after.version != before.version {
            continue;
        }
        let mut bank = Bank::new(&before.name, signal).map_err(|e| ServerError::Internal(e.to_string()))?;
        bank.threshold = threshold;
        let mut by_hash: BTreeMap<Words, Entry> = BTreeMap::new();
        for (id, text, labels) in rows {
            let Ok((hash, _)) = parse_signal(signal, &text) else { continue };
            let entry = by_hash.entry(hash).or_insert_with(|| Entry {
                hash,
                labels: BTreeSet::new(),
                source_id: Some(format!("content:{id}")),
            });
            for label in labels {
                if entry.labels.len() < frankly_bank::MAX_LABELS_PER_ENTRY {
                    entry.labels.insert(label);
                }
            }
        }
        bank.entries = by_hash.into_values().collect();
        bank.canonicalize();
        return Ok((bank, before.version));
    }
    Err(ServerError::refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!("bank '{name}' changed while its bundle was being made; try again"),
    ))
}

/// The current version's bundle, signed by the server (cached per version).
async fn signed_now(
    state: &AppState,
    key: &SigningKey,
    bank: &BankRow,
    signal: (SignalType, u32),
) -> Result<Arc<Signed>, HmaError> {
    let feed = state.feed();
    let cached = || {
        feed.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(bank.id, signal.0))
            .filter(|hit| hit.version == bank.version)
            .cloned()
    };
    if let Some(hit) = cached() {
        return Ok(hit);
    }
    let _slot = crate::guard::slot(&state.inner.bundle_slots, "a bank bundle is being made").await?;
    // Made by another request while this one waited?
    if let Some(hit) = cached() {
        return Ok(hit);
    }
    let (device, version) = device_bank(state.db(), &bank.name, signal.0, signal.1).await?;
    let key = key.clone();
    let valid = feed.valid_secs;
    let signed = tokio::task::spawn_blocking(move || {
        let now = frankly_bank::unix_now();
        frankly_bank::sign_bundle(&device, &key, version as u64, now, now.saturating_add(valid))
            .map(|(bytes, _)| Signed { version, bank: device, bytes: Bytes::from(bytes) })
    })
    .await
    .map_err(|e| ServerError::Internal(format!("signing panicked: {e}")))?
    .map_err(|e| ServerError::Internal(format!("cannot sign bank '{}': {e}", bank.name)))?;
    let signed = Arc::new(signed);
    let mut cache = feed.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let slot = cache.entry((bank.id, signal.0)).or_insert_with(|| Arc::clone(&signed));
    if slot.version < signed.version {
        *slot = Arc::clone(&signed);
    }
    Ok(signed)
}

/// A bundle's answer: its bytes, or 304 when the device already holds
/// `bundle_version`; the ETag is that version.
fn octets(bytes: Bytes, bank_version: i64, bundle_version: i64, held: bool) -> Response {
    let etag = format!("\"{bundle_version}\"");
    let mut response = if held {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")));
    h.insert("x-frankly-bank-version", HeaderValue::from(bank_version));
    h.insert("x-frankly-bundle-version", HeaderValue::from(bundle_version));
    response
}

async fn bundle(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HmaError> {
    authorize(&state, &headers, Scope::Bundle).await?;
    let signal = signal_of(&q)?;
    let bank = shipped_bank(&state, &name).await?;
    if let Some(key) = &state.feed().key {
        let signed = signed_now(&state, key, &bank, signal).await?;
        let held = holds(&headers, signed.version);
        return Ok(octets(signed.bytes.clone(), bank.version, signed.version, held));
    }
    let (version, bytes) = match_store::published_bundle(state.db(), bank.id, signal.0).await?.ok_or_else(|| {
        fail(
            StatusCode::NOT_FOUND,
            format!(
                "no bundle of bank '{name}' ({}) has been published: this server signs offline (no \
                 bank_signing_key); export the bank, sign it, and publish it with `frankly serve admin publish-bundle`",
                signal.0.name()
            ),
        )
    })?;
    Ok(octets(Bytes::from(bytes), bank.version, version, holds(&headers, version)))
}

/// Whether `If-None-Match` names `version` (the ETag of its bundle).
fn holds(headers: &HeaderMap, version: i64) -> bool {
    headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == format!("\"{version}\"").as_bytes())
}

async fn delta(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HmaError> {
    authorize(&state, &headers, Scope::Bundle).await?;
    let signal = signal_of(&q)?;
    let from: i64 = q
        .get("from")
        .ok_or_else(|| bad("from (the version the device holds) is required"))?
        .parse()
        .ok()
        .filter(|v: &i64| *v >= 0)
        .ok_or_else(|| bad("from must be a non-negative integer"))?;
    let bank = shipped_bank(&state, &name).await?;
    let Some(key) = &state.feed().key else {
        return Err(fail(
            StatusCode::CONFLICT,
            "this server signs bundles offline (no bank_signing_key), so it cannot sign deltas: fetch the full bundle",
        ));
    };
    if from > bank.version {
        return Err(bad(format!("from {from} is newer than bank '{name}' (version {})", bank.version)));
    }
    let signed = signed_now(&state, key, &bank, signal).await?;
    if from == signed.version {
        return Ok(octets(Bytes::new(), bank.version, signed.version, true));
    }
    if signed.version - from > MAX_DELTA_CHANGES {
        return Err(fail(
            StatusCode::CONFLICT,
            format!(
                "version {from} is {} changes behind, more than a delta spans ({MAX_DELTA_CHANGES}): fetch the full bundle",
                signed.version - from
            ),
        ));
    }
    // Deltas are made one at a time, like bundles.
    let _slot = crate::guard::slot(&state.inner.bundle_slots, "a bank bundle is being made").await?;
    let texts = match_store::changed_signals(state.db(), bank.id, signal.0, from, signed.version).await?;
    let affected: Vec<Words> = texts.iter().filter_map(|t| parse_signal(signal.0, t).ok().map(|(w, _)| w)).collect();
    let key = key.clone();
    let valid = state.feed().valid_secs;
    let to = signed.version;
    let bytes = tokio::task::spawn_blocking(move || {
        let delta = BankDelta::for_hashes(&signed.bank, affected, from as u64, to as u64)
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        let now = frankly_bank::unix_now();
        frankly_bank::sign_delta_bundle(&delta, &key, now, now.saturating_add(valid))
            .map(|(bytes, _)| bytes)
            .map_err(|e| ServerError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| ServerError::Internal(format!("signing panicked: {e}")))??;
    Ok(octets(Bytes::from(bytes), bank.version, to, false))
}

/// The bank named `name` as a device bank (plain, unsigned) at its
/// current version, for signing offline (`frankly serve admin
/// export-bank`).
pub async fn export_bank(db: &Db, name: &str, signal: SignalType) -> Result<(Bank, i64), ServerError> {
    let threshold = MATCH_SIGNAL_TYPES.into_iter().find(|(s, _)| *s == signal).map(|(_, t)| t).ok_or_else(|| {
        ServerError::refused(StatusCode::BAD_REQUEST, "invalid_bank", format!("{signal} is not served"))
    })?;
    let row = match_store::bank(db, name)
        .await?
        .ok_or_else(|| ServerError::refused(StatusCode::NOT_FOUND, "no_bank", format!("bank '{name}' not found")))?;
    if row.negative {
        return Err(ServerError::refused(
            StatusCode::CONFLICT,
            "negative_bank",
            format!("bank '{name}' is a negative bank: not shipped"),
        ));
    }
    device_bank(db, name, signal, threshold).await
}

/// Publishes a bundle signed offline for the bank it names, after checking
/// it as a device would under `public_key` (and against the bundle
/// published before: no rollback, no second bundle of one version), that
/// its version is one the bank has reached, and that it holds exactly that
/// version's entries. Returns its version.
pub async fn publish_bundle(db: &Db, bytes: &[u8], public_key: &VerifyingKey) -> Result<u64, ServerError> {
    let refused = |m: String| ServerError::refused(StatusCode::BAD_REQUEST, "invalid_bundle", m);
    let plain = frankly_bank::verify_bundle(bytes, public_key, frankly_bank::unix_now(), None)
        .map_err(|e| refused(e.to_string()))?;
    let (bank, peeked) = (plain.bank(), plain.info());
    let row =
        match_store::bank(db, &bank.name).await?.ok_or_else(|| refused(format!("no bank named '{}'", bank.name)))?;
    // The bank's name is inside the signed payload: only now is it known
    // which published bundle this one replaces (the device's own rollback
    // and equivocation check, against it).
    if let Some((_, old)) = match_store::published_bundle(db, row.id, bank.signal).await? {
        let (old, _) = frankly_bank::peek_bundle(&old).map_err(|e| ServerError::Internal(e.to_string()))?;
        let loaded = frankly_bank::Loaded { version: old.version, digest: old.digest };
        frankly_bank::check_rollback(peeked, Some(&loaded)).map_err(|e| match e {
            frankly_bank::BundleError::Equivocation { version } => {
                refused(format!("another bundle of version {version} is already published"))
            }
            e => refused(e.to_string()),
        })?;
    }
    let (current, version) = export_bank(db, &bank.name, bank.signal).await?;
    if peeked.version != version as u64 {
        return Err(refused(format!(
            "the bundle is version {}, bank '{}' is at version {version}: export it again and sign that version",
            peeked.version, bank.name
        )));
    }
    if current != *bank {
        return Err(refused(format!(
            "the bundle's entries are not those of bank '{}' at version {version}: export it again",
            bank.name
        )));
    }
    match_store::publish_bundle(db, row.id, bank.signal, version, bytes).await?;
    Ok(peeked.version)
}
