//! Signed webhooks: `report.created`, `report.decided`, `appeal.filed` and
//! `appeal.decided`, delivered at least once to every configured endpoint.
//!
//! - **Durable.** [`record`] writes the event in the transaction of what it
//!   reports, so an event exists exactly when its report or decision does,
//!   across a crash or `kill -9`. Nothing about delivery is held in memory.
//! - **Fan-out.** The deliverer gives each new event one delivery row per
//!   endpoint subscribed to its kind (unique per event and endpoint, so a
//!   fan-out repeated after a crash adds nothing) and marks it fanned out,
//!   in one transaction.
//! - **At least once.** A due delivery is leased (its next attempt moved past
//!   the timeout, so another instance or the next round skips it), sent, and
//!   marked delivered on a 2xx; otherwise it is retried after
//!   `webhook_backoff_ms` doubled per attempt up to
//!   `webhook_max_backoff_ms`, and after `webhook_max_attempts` it is a dead
//!   letter (the admin UI lists and requeues them), as is at once a delivery
//!   to an endpoint no longer configured. A crash between sending
//!   and recording sends it again: receivers deduplicate by the event id.
//! - **Signed.** The body is signed with Ed25519 under the server's webhook
//!   key ([`signed_message`]); the headers carry the event id (the
//!   idempotency key), the time, the key id and the signature. The public
//!   keys are at `GET /v1/webhook-keys`.

use std::str::FromStr;

use base64::Engine;
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::Backend;
use crate::{AppState, ServerError};

/// The header with the event id, the idempotency key.
pub const ID_HEADER: &str = "frankly-webhook-id";
/// The header with the signing time (Unix ms), which the signature covers.
pub const TIMESTAMP_HEADER: &str = "frankly-webhook-timestamp";
/// The header naming the signing key ([`key_id`]).
pub const KEY_ID_HEADER: &str = "frankly-webhook-key-id";
/// The header with the signature, `ed25519=<base64>`.
pub const SIGNATURE_HEADER: &str = "frankly-webhook-signature";
/// The domain the signed message starts with.
pub const SIGNATURE_DOMAIN: &str = "frankly-webhook-v1";
/// Most deliveries one round sends.
pub const DELIVERY_BATCH: i64 = 256;
/// Longest error text kept per delivery.
const MAX_ERROR_CHARS: usize = 300;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A verified report was queued.
    ReportCreated,
    /// A report was decided (including an escalation).
    ReportDecided,
    /// A decision was appealed.
    AppealFiled,
    /// An appeal was decided (uphold or reverse).
    AppealDecided,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 4] = [Event::ReportCreated, Event::ReportDecided, Event::AppealFiled, Event::AppealDecided];

    /// Its name in bodies and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Event::ReportCreated => "report.created",
            Event::ReportDecided => "report.decided",
            Event::AppealFiled => "appeal.filed",
            Event::AppealDecided => "appeal.decided",
        }
    }
}

impl FromStr for Event {
    type Err = String;

    fn from_str(s: &str) -> Result<Event, String> {
        Event::ALL.into_iter().find(|e| e.name() == s).ok_or_else(|| format!("no webhook event named {s:?}"))
    }
}

/// The message a webhook signature covers: the domain, the event id, the
/// timestamp and the body, each but the body followed by a newline.
pub fn signed_message(event_id: &str, timestamp_ms: i64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{SIGNATURE_DOMAIN}\n{event_id}\n{timestamp_ms}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// A public key's id: the first 8 bytes of its SHA-256, hex.
pub fn key_id(public: &ed25519_dalek::VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..8])
}

/// Records `event` about `subject` (for example `report:12`) with `data`,
/// in the caller's transaction. The body is fixed here, once: every
/// delivery and retry sends the same bytes.
pub(crate) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    event: Event,
    subject: &str,
    data: serde_json::Value,
) -> Result<(), ServerError> {
    let id = hex::encode(crate::secrets::random32()?.get(..16).unwrap_or_default());
    let now = crate::now_ms();
    let body = serde_json::json!({"id": id, "type": event.name(), "created_ms": now, "subject": subject, "data": data});
    let body = serde_json::to_vec(&body).map_err(|e| ServerError::Internal(e.to_string()))?;
    sqlx::query("INSERT INTO webhook_events (event_id, kind, body, created_ms) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(event.name())
        .bind(body)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What one round of the deliverer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Events fanned out.
    pub fanned_out: u64,
    /// Deliveries an endpoint accepted.
    pub delivered: u64,
    /// Deliveries that failed and will be retried.
    pub retried: u64,
    /// Deliveries that became dead letters.
    pub dead: u64,
}

struct Due {
    id: i64,
    event_id: String,
    endpoint: String,
    attempts: i64,
    body: Vec<u8>,
}

/// The delay before attempt `attempts + 1`.
pub(crate) fn backoff_ms(config: &crate::Config, attempts: i64) -> i64 {
    let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
    let delay = config.webhook_backoff_ms.saturating_mul(1u64 << shift).min(config.webhook_max_backoff_ms);
    i64::try_from(delay).unwrap_or(i64::MAX)
}

impl AppState {
    /// One round of webhook delivery: fans out new events, then sends the
    /// deliveries that are due (at most [`DELIVERY_BATCH`]) and records
    /// each outcome. `serve` runs it every `webhook_poll_ms`.
    pub async fn deliver_webhooks(&self) -> Result<Round, ServerError> {
        let mut round = Round { fanned_out: self.fan_out().await?, ..Round::default() };
        let config = self.config();
        let now = crate::now_ms();
        let lease = i64::try_from(config.webhook_timeout_seconds.saturating_mul(2000)).unwrap_or(i64::MAX);
        let lock = match self.db().backend() {
            Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.db().writer().begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT d.id, d.endpoint, d.attempts, e.event_id, e.body FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event \
             WHERE d.delivered_ms IS NULL AND d.dead_ms IS NULL AND d.next_attempt_ms <= $1 \
             ORDER BY d.next_attempt_ms, d.id LIMIT $2 {lock}"
        ))
        .bind(now)
        .bind(DELIVERY_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let due = rows
            .iter()
            .map(|r| {
                Ok(Due {
                    id: r.try_get("id")?,
                    event_id: r.try_get("event_id")?,
                    endpoint: r.try_get("endpoint")?,
                    attempts: r.try_get("attempts")?,
                    body: r.try_get("body")?,
                })
            })
            .collect::<Result<Vec<Due>, ServerError>>()?;
        // Leased: no other round takes them until the lease ends.
        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        set_where_ids(&mut tx, "UPDATE webhook_deliveries SET next_attempt_ms = $1", now.saturating_add(lease), &ids)
            .await?;
        tx.commit().await?;
        if due.is_empty() {
            return Ok(round);
        }
        let client = &self.inner.webhook_client;
        let key = self.secrets().webhook_key();
        let key_id = key_id(&key.verifying_key());
        // Sent at once (at most DELIVERY_BATCH), each within the client's timeout.
        let mut sends = tokio::task::JoinSet::new();
        // A delivery to an endpoint taken out of the configuration is not
        // sent: it becomes a dead letter at once (put it back to send it).
        let configured = |d: &Due| config.webhooks.iter().any(|w| w.url == d.endpoint);
        let mut outcomes: Vec<Result<(), String>> = vec![Err("the endpoint is no longer configured".into()); due.len()];
        for (i, d) in due.iter().enumerate().filter(|(_, d)| configured(d)) {
            let timestamp = crate::now_ms();
            let coop = config.webhooks.iter().any(|w| w.url == d.endpoint && w.format == crate::EndpointFormat::Coop);
            // Coop's intake takes its own body (the verified report) and key.
            let (body, api_key) = if coop {
                let Some(coop_config) = config.coop.as_ref() else { continue };
                let built = crate::coop::intake_body(self.db(), &d.body, coop_config).await;
                let key = crate::coop::api_key(coop_config).map_err(|e| e.to_string());
                match (built, key) {
                    (Ok(body), Ok(key)) => (body, Some(key)),
                    (Err(e), _) | (_, Err(e)) => {
                        outcomes[i] = Err(format!("not sent to Coop: {e}"));
                        continue;
                    }
                }
            } else {
                (d.body.clone(), None)
            };
            let signature = key.sign(&signed_message(&d.event_id, timestamp, &body));
            let mut request = client.post(&d.endpoint);
            if let Some(api_key) = &api_key {
                request = request.header("x-api-key", api_key.as_str());
            }
            let request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(ID_HEADER, &d.event_id)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(KEY_ID_HEADER, &key_id)
                .header(
                    SIGNATURE_HEADER,
                    format!("ed25519={}", base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())),
                )
                .body(body);
            sends.spawn(async move {
                let outcome = match request.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("the endpoint answered {}", r.status())),
                    Err(e) => Err(format!("no answer: {e}")),
                };
                (i, outcome)
            });
        }
        while let Some(done) = sends.join_next().await {
            let (i, outcome) = done.map_err(|e| ServerError::Internal(e.to_string()))?;
            outcomes[i] = outcome;
        }
        let now = crate::now_ms();
        let mut tx = self.db().writer().begin().await?;
        let mut delivered = Vec::with_capacity(due.len());
        for (d, outcome) in due.iter().zip(outcomes) {
            let attempts = d.attempts.saturating_add(1);
            match outcome {
                Ok(()) => delivered.push(d.id),
                Err(why) => {
                    let why: String = why.chars().take(MAX_ERROR_CHARS).collect();
                    let dead = attempts >= i64::from(config.webhook_max_attempts) || !configured(d);
                    sqlx::query(
                        "UPDATE webhook_deliveries SET attempts = $1, next_attempt_ms = $2, dead_ms = $3, last_error = $4 \
                         WHERE id = $5",
                    )
                    .bind(attempts)
                    .bind(now.saturating_add(backoff_ms(config, attempts)))
                    .bind(dead.then_some(now))
                    .bind(&why)
                    .bind(d.id)
                    .execute(&mut *tx)
                    .await?;
                    tracing::warn!(endpoint = %d.endpoint, event = %d.event_id, attempts, dead, error = %why, "webhook delivery failed");
                    if dead {
                        round.dead += 1;
                    } else {
                        round.retried += 1;
                    }
                }
            }
        }
        // The rows are leased to this round, so each one's attempts are its own.
        set_where_ids(
            &mut tx,
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = NULL, delivered_ms = $1",
            now,
            &delivered,
        )
        .await?;
        round.delivered = delivered.len() as u64;
        tx.commit().await?;
        Ok(round)
    }

    /// Gives new events their delivery rows, one per subscribed endpoint.
    async fn fan_out(&self) -> Result<u64, ServerError> {
        let endpoints = &self.config().webhooks;
        let lock = match self.db().backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.db().writer().begin().await?;
        let events = sqlx::query(&format!(
            "SELECT id, kind FROM webhook_events WHERE fanned_out_ms IS NULL ORDER BY id LIMIT 1000 {lock}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let now = crate::now_ms();
        let events = events
            .iter()
            .map(|e| Ok((e.try_get::<i64, _>("id")?, e.try_get::<String, _>("kind")?)))
            .collect::<Result<Vec<(i64, String)>, ServerError>>()?;
        // One multi-row INSERT per endpoint and one UPDATE for the round,
        // not a statement per event: the writer is shared with decisions.
        for endpoint in endpoints {
            let ids: Vec<i64> = events
                .iter()
                .filter(|(_, kind)| endpoint.events.is_empty() || endpoint.events.contains(kind))
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let rows: Vec<String> = (0..ids.len()).map(|i| format!("(${}, $1, 0, $2)", i + 3)).collect();
            let sql = format!(
                "INSERT INTO webhook_deliveries (event, endpoint, attempts, next_attempt_ms) VALUES {} \
                 ON CONFLICT DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(&endpoint.url).bind(now);
            for id in &ids {
                query = query.bind(*id);
            }
            query.execute(&mut *tx).await?;
        }
        let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
        set_where_ids(&mut tx, "UPDATE webhook_events SET fanned_out_ms = $1", now, &ids).await?;
        tx.commit().await?;
        Ok(events.len() as u64)
    }
}

/// Runs `update` (an `UPDATE ... SET` with one parameter, `$1` = `value`)
/// on the rows whose `id` is in `ids` (at most a round's: 1000), in one
/// statement. Nothing for no ids.
async fn set_where_ids(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    update: &str,
    value: i64,
    ids: &[i64],
) -> Result<(), ServerError> {
    if ids.is_empty() {
        return Ok(());
    }
    let params: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!("{update} WHERE id IN ({})", params.join(", "));
    let mut query = sqlx::query(&sql).bind(value);
    for id in ids {
        query = query.bind(*id);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// A dead letter, as the admin UI lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeadLetter {
    /// The delivery's id.
    pub id: i64,
    /// The event id.
    pub event_id: String,
    /// Its kind.
    pub kind: String,
    /// The endpoint.
    pub endpoint: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last failure.
    pub last_error: String,
    /// When it was given up (Unix ms).
    pub dead_ms: i64,
}

/// The dead letters, newest first (at most 500).
pub(crate) async fn dead_letters(db: &crate::Db) -> Result<Vec<DeadLetter>, ServerError> {
    sqlx::query(
        "SELECT d.id, e.event_id, e.kind, d.endpoint, d.attempts, d.last_error, d.dead_ms FROM webhook_deliveries d \
         JOIN webhook_events e ON e.id = d.event WHERE d.dead_ms IS NOT NULL ORDER BY d.dead_ms DESC, d.id DESC LIMIT 500",
    )
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| {
        Ok(DeadLetter {
            id: r.try_get("id")?,
            event_id: r.try_get("event_id")?,
            kind: r.try_get("kind")?,
            endpoint: r.try_get("endpoint")?,
            attempts: r.try_get("attempts")?,
            last_error: r.try_get::<Option<String>, _>("last_error")?.unwrap_or_default(),
            dead_ms: r.try_get("dead_ms")?,
        })
    })
    .collect()
}

/// Requeues a dead letter (its attempts start again), audited as `actor`;
/// returns whether it was one.
pub(crate) async fn requeue(db: &crate::Db, actor: &str, id: i64) -> Result<bool, ServerError> {
    let mut tx = db.writer().begin().await?;
    let n = sqlx::query(
        "UPDATE webhook_deliveries SET dead_ms = NULL, attempts = 0, next_attempt_ms = $1 WHERE id = $2 AND dead_ms IS NOT NULL",
    )
    .bind(crate::now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        crate::audit::append(&mut tx, db.backend(), actor, "requeue-webhook", &format!("delivery:{id}"), "").await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config =
            crate::Config { webhook_backoff_ms: 100, webhook_max_backoff_ms: 1000, ..crate::Config::default() };
        let delays: Vec<i64> = (1..=6).map(|a| backoff_ms(&config, a)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff_ms(&config, i64::MAX), 1000);
    }

    #[test]
    fn event_names_round_trip() {
        for e in Event::ALL {
            assert_eq!(e.name().parse::<Event>(), Ok(e));
        }
        assert!("report.deleted".parse::<Event>().is_err());
    }
}
