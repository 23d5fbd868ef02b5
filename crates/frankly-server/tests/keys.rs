//! Keys at rest: tag and report keys are wrapped under key chains kept
//! outside the database, a retired key cannot be read back from a restored
//! backup, a database without its chain files cannot tag or open anything,
//! and report keys rotate with a grace period. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::franked::{conversation, seal};
use common::{Engine, Harness};
use frankly_report::Reason;
use frankly_server::{AppState, Config};
use sqlx::Row;

on_both!(
    a_retired_tag_key_cannot_be_read_from_a_restored_backup,
    the_database_alone_cannot_tag_or_open_reports,
    report_keys_rotate_with_a_grace_period,
    plaintext_tag_keys_of_an_older_version_are_wrapped,
);

const DAY_MS: i64 = 86_400_000;

async fn pool(h: &Harness) -> sqlx::AnyPool {
    sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap()
}

fn tag_ids(state: &AppState) -> Vec<u32> {
    state.platform_keys().keyring().ids().collect()
}

async fn a_retired_tag_key_cannot_be_read_from_a_restored_backup(h: Harness) {
    assert_eq!(tag_ids(&h.state), vec![1]);
    let db = pool(&h).await;
    // The "backup": key 1's row as a dump taken before it retired holds it.
    let backup = sqlx::query("SELECT id, wrapped, active_from_ms, active_until_ms, accept_until_ms FROM tag_keys")
        .fetch_one(&db)
        .await
        .unwrap();
    let wrapped: Vec<u8> = backup.try_get("wrapped").unwrap();
    assert!(wrapped.len() >= 12 + 32 + 16, "nonce, ciphertext and tag");
    // Past the tagging period and the retention of key 1 (7 days + 90 days).
    let later = frankly_server::now_ms() + 98 * DAY_MS;
    h.state.platform_keys().rotate_if_due(h.state.db(), later).await.unwrap();
    assert_eq!(tag_ids(&h.state), vec![2], "key 2 tags, key 1 is retired");
    let chain = std::fs::read_to_string(h.state.config().key_dir().join(frankly_server::TAG_CHAIN_FILE)).unwrap();
    assert!(chain.starts_with("frankly-key-chain-v1 tag 2 "), "the chain moved past key 1");
    // Restore the old row, as restoring the backup would.
    sqlx::query(
        "INSERT INTO tag_keys (id, wrapped, active_from_ms, active_until_ms, accept_until_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(backup.try_get::<i64, _>("id").unwrap())
    .bind(wrapped)
    .bind(backup.try_get::<i64, _>("active_from_ms").unwrap())
    .bind(backup.try_get::<i64, _>("active_until_ms").unwrap())
    .bind(backup.try_get::<i64, _>("accept_until_ms").unwrap())
    .execute(&db)
    .await
    .unwrap();
    // Neither this instance nor a new one can read it; it is deleted.
    let other = h.another_instance().await;
    assert_eq!(tag_ids(&other), vec![2]);
    h.state.platform_keys().rotate_if_due(h.state.db(), later).await.unwrap();
    assert_eq!(tag_ids(&h.state), vec![2]);
    let left: Vec<i64> = sqlx::query("SELECT id FROM tag_keys ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("id").unwrap())
        .collect();
    assert_eq!(left, vec![2]);
    db.close().await;
}

async fn the_database_alone_cannot_tag_or_open_reports(h: Harness) {
    // Another data directory on the same database: no chain files.
    let stranger = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: stranger.path().join("data"),
        database_url: Some(h.state.config().database_url()),
        ..Config::default()
    };
    let err = AppState::open(config.clone(), Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("tag-keys.chain is missing") && err.contains("copy it"), "{err}");
    // Chain files from another server do not unwrap this database's keys.
    let other = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    for file in [frankly_server::TAG_CHAIN_FILE, frankly_server::REPORT_CHAIN_FILE] {
        std::fs::copy(other.state.config().key_dir().join(file), config.data_dir.join(file)).unwrap();
    }
    let err = AppState::open(config, Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("does not unwrap"), "{err}");
    // No column of the database holds a key in the clear: every secret is
    // a wrapped blob of nonce, ciphertext and tag, and the report key's
    // public half is not stored at all.
    let db = pool(&h).await;
    for table in ["tag_keys", "report_keys"] {
        let rows = sqlx::query(&format!("SELECT wrapped FROM {table}")).fetch_all(&db).await.unwrap();
        assert!(!rows.is_empty());
        for row in rows {
            assert_eq!(row.try_get::<Vec<u8>, _>("wrapped").unwrap().len(), 12 + 32 + 16, "{table}");
        }
    }
    db.close().await;
}

async fn report_keys_rotate_with_a_grace_period(h: Harness) {
    let first = h.server_key();
    assert_eq!(first.0, 1);
    let msgs =
        conversation(&h.keyring(), "conv-1", "mallory", "bob", 3, u64::try_from(frankly_server::now_ms()).unwrap());
    let (_, sealed_to_1) = seal(msgs.clone(), Reason::Harassment, &first);
    // Rotate now: devices are given key 2; key 1 still opens.
    let now = frankly_server::now_ms();
    h.state.report_keys().rotate(h.state.db(), now, true).await.unwrap();
    assert_eq!(h.server_key().0, 2);
    assert!(h.state.report_keys().keyring().open(&sealed_to_1, u64::try_from(now).unwrap()).is_ok());
    let (status, _) = h.post_report(sealed_to_1.clone()).await;
    assert_eq!(status, axum::http::StatusCode::ACCEPTED);
    assert_eq!(h.stored().await.len(), 1, "a report sealed to the old key inside its grace period is kept");
    // After the grace period (14 days) key 1 is gone, from the chain too.
    let later = now + 15 * DAY_MS;
    h.state.report_keys().rotate(h.state.db(), later, false).await.unwrap();
    let keyring = h.state.report_keys().keyring();
    assert!(matches!(
        keyring.open(&sealed_to_1, u64::try_from(later).unwrap()),
        Err(frankly_report::ReportError::UnknownReportKey(1))
    ));
    let chain = std::fs::read_to_string(h.state.config().key_dir().join(frankly_server::REPORT_CHAIN_FILE)).unwrap();
    assert!(chain.starts_with("frankly-key-chain-v1 report 2 "));
    // Another instance agrees.
    let other = h.another_instance().await;
    assert_eq!(other.report_keys().keyring().current().unwrap().0, 2);
    // A report sealed to key 2 opens.
    let (_, sealed_to_2) = seal(msgs, Reason::Spam, &h.server_key());
    assert!(keyring.open(&sealed_to_2, u64::try_from(later).unwrap()).is_ok());
}

async fn plaintext_tag_keys_of_an_older_version_are_wrapped(h: Harness) {
    let db = pool(&h).await;
    let now = frankly_server::now_ms();
    sqlx::query(
        "INSERT INTO platform_keys (id, secret, active_from_ms, active_until_ms, accept_until_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(7_i64)
    .bind(vec![7u8; 32])
    .bind(now - DAY_MS)
    .bind(now + DAY_MS)
    .bind(now + 2 * DAY_MS)
    .execute(&db)
    .await
    .unwrap();
    let other = h.another_instance().await;
    assert!(tag_ids(&other).contains(&7));
    let left: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM platform_keys").fetch_one(&db).await.unwrap().try_get("n").unwrap();
    assert_eq!(left, 0, "no plaintext key is left");
    let wrapped: Vec<u8> = sqlx::query("SELECT wrapped FROM tag_keys WHERE id = 7")
        .fetch_one(&db)
        .await
        .unwrap()
        .try_get("wrapped")
        .unwrap();
    assert!(!wrapped.windows(32).any(|w| w == [7u8; 32]));
    db.close().await;
}
