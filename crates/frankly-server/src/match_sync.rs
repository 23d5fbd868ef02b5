//! How each instance keeps the matching service's index current: it loads
//! every bank and content once, then replays the change log
//! (`match_changes`) from where it is. The instance that made a change
//! replays it before the request returns; the others within
//! `match_poll_ms`. Replaying re-reads the current rows of what changed, so
//! it is idempotent, and the log head's row lock makes changes commit in
//! sequence order, so no change is skipped.

use frankly_match::MatchState;

use crate::match_store::{self, BankRow};
use crate::{Db, MATCH_SIGNAL_TYPES, ServerError, now_ms};

/// Changes read from the log per round.
pub const SYNC_BATCH: i64 = 5_000;
/// An instance further behind than this reloads everything instead of
/// replaying (after a long pause, or a bulk import elsewhere).
pub const FULL_RELOAD_CHANGES: i64 = 200_000;
/// Changes pending on an index's base before it is rebuilt beside lookups.
pub const COMPACT_AFTER: usize = 4_096;

/// The matching service's state behind a lock that a panicking writer does
/// not poison for good (the state changes a complete step at a time), and
/// the log position it holds.
#[derive(Debug)]
pub(crate) struct MatchLock {
    state: std::sync::RwLock<MatchState>,
    /// The last change applied; held while replaying, so replays do not
    /// interleave.
    applied: tokio::sync::Mutex<i64>,
}

/// Every bank and content, and the log position they include.
async fn load_all(db: &Db) -> Result<(MatchState, i64), ServerError> {
    // The head first: whatever commits after it is loaded now and replayed
    // again later, which changes nothing.
    let head = match_store::log_head(db).await?;
    let banks = match_store::banks(db).await?.iter().map(BankRow::info).collect::<Vec<_>>();
    let contents = match_store::all_content(db).await?;
    Ok((MatchState::load(MATCH_SIGNAL_TYPES, banks, contents, now_ms() / 1000), head))
}

impl MatchLock {
    /// Every bank and content from the database when the API is on; empty
    /// otherwise.
    pub(crate) async fn load(db: &Db, on: bool) -> Result<MatchLock, ServerError> {
        let (state, head) = if on { load_all(db).await? } else { (MatchState::new(MATCH_SIGNAL_TYPES), 0) };
        Ok(MatchLock { state: std::sync::RwLock::new(state), applied: tokio::sync::Mutex::new(head) })
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, MatchState> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, MatchState> {
        self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies every change logged since the last call; returns how many.
    pub(crate) async fn catch_up(&self, db: &Db) -> Result<usize, ServerError> {
        let mut applied = self.applied.lock().await;
        let mut count = 0;
        loop {
            let head = match_store::log_head(db).await?;
            if head <= *applied {
                return Ok(count);
            }
            if head - *applied > FULL_RELOAD_CHANGES {
                let (state, at) = load_all(db).await?;
                *self.write() = state;
                count += usize::try_from(at - *applied).unwrap_or(0);
                *applied = at;
                continue;
            }
            let changes = match_store::changes_after(db, *applied, SYNC_BATCH).await?;
            let Some(last) = changes.last().map(|c| c.seq) else { return Ok(count) };
            let banks = match_store::banks(db).await?;
            let mut content_ids: Vec<i64> = changes.iter().filter_map(|c| c.content_id).collect();
            content_ids.sort_unstable();
            content_ids.dedup();
            let contents = match_store::contents_by_id(db, &content_ids).await?;
            let changed_banks: std::collections::BTreeSet<i64> =
                changes.iter().filter(|c| c.content_id.is_none()).map(|c| c.bank_id).collect();
            let now = now_ms() / 1000;
            {
                let mut state = self.write();
                for bank in &banks {
                    if changed_banks.contains(&bank.id) || state.bank(bank.id).is_none() {
                        state.upsert_bank(bank.info());
                    }
                }
                let present: std::collections::BTreeSet<i64> = contents.iter().map(|c| c.id).collect();
                for content in contents {
                    state.upsert_content(content, now);
                }
                for id in content_ids.iter().filter(|id| !present.contains(id)) {
                    state.remove_content(*id, now);
                }
                for id in &changed_banks {
                    if !banks.iter().any(|b| b.id == *id) {
                        state.remove_bank(*id, now);
                    }
                }
            }
            count += changes.len();
            *applied = last;
        }
    }

    /// Rebuilds the base of each index with many changes pending, off the
    /// async threads and beside lookups.
    pub(crate) async fn compact(&self) -> Result<(), ServerError> {
        let snapshots = self.write().snapshot(COMPACT_AFTER);
        for (signal, snapshot) in snapshots {
            let rebuilt = tokio::task::spawn_blocking(move || snapshot.build())
                .await
                .map_err(|e| ServerError::Internal(format!("index rebuild panicked: {e}")))?;
            self.write().install(signal, rebuilt);
        }
        Ok(())
    }
}

/// Follows the change log every `poll` until the task is dropped: replays
/// changes from other instances, logs content whose `disable_until_ts`
/// passed, and compacts the indexes.
pub(crate) async fn follow(state: crate::AppState, poll: std::time::Duration) {
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let db = state.db();
        if let Err(e) = match_store::log_due_enables(db, now_ms() / 1000).await {
            tracing::warn!(error = %e, "logging due enables failed");
        }
        if let Err(e) = state.matching().catch_up(db).await {
            tracing::warn!(error = %e, "reading the match change log failed");
        }
        if let Err(e) = state.matching().compact().await {
            tracing::warn!(error = %e, "index compaction failed");
        }
    }
}
