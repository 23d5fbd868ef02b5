//! Storage: one SQL dialect over `sqlx`'s `Any` driver, SQLite embedded by
//! default and PostgreSQL for several instances.
//!
//! Queries use `$n` parameters and types both engines share (`BIGINT`,
//! `TEXT`, blobs), so each is written once. Where the engines differ
//! (claiming with `FOR UPDATE SKIP LOCKED`, serialising audit appends) the
//! code branches on [`Backend`]. SQLite runs in WAL mode with
//! `synchronous=FULL`, so a committed transaction survives a crash or a power
//! cut, and all writes go through one connection, so the server's own writers
//! never meet `SQLITE_BUSY`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::ServerError;

/// Which engine a database URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, a file in the data directory.
    Sqlite,
    /// PostgreSQL, shared by several instances.
    Postgres,
}

/// One versioned migration, in both dialects.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The schema's history. A migration is never edited once released; a change
/// is a new entry.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "franking v2",
        sqlite: include_str!("../migrations/sqlite/0002_franking_v2.sql"),
        postgres: include_str!("../migrations/postgres/0002_franking_v2.sql"),
    },
    Migration {
        version: 3,
        name: "wrapped keys",
        sqlite: include_str!("../migrations/sqlite/0003_wrapped_keys.sql"),
        postgres: include_str!("../migrations/postgres/0003_wrapped_keys.sql"),
    },
    Migration {
        version: 4,
        name: "match service",
        sqlite: include_str!("../migrations/sqlite/0004_match_service.sql"),
        postgres: include_str!("../migrations/postgres/0004_match_service.sql"),
    },
    Migration {
        version: 5,
        name: "match changes",
        sqlite: include_str!("../migrations/sqlite/0005_match_changes.sql"),
        postgres: include_str!("../migrations/postgres/0005_match_changes.sql"),
    },
    Migration {
        version: 6,
        name: "report attachments",
        sqlite: include_str!("../migrations/sqlite/0006_report_attachments.sql"),
        postgres: include_str!("../migrations/postgres/0006_report_attachments.sql"),
    },
    Migration {
        version: 7,
        name: "review keys",
        sqlite: include_str!("../migrations/sqlite/0007_review_keys.sql"),
        postgres: include_str!("../migrations/postgres/0007_review_keys.sql"),
    },
    Migration {
        version: 8,
        name: "webhooks",
        sqlite: include_str!("../migrations/sqlite/0008_webhooks.sql"),
        postgres: include_str!("../migrations/postgres/0008_webhooks.sql"),
    },
    Migration {
        version: 9,
        name: "comments",
        sqlite: include_str!("../migrations/sqlite/0009_comments.sql"),
        postgres: include_str!("../migrations/postgres/0009_comments.sql"),
    },
    Migration {
        version: 10,
        name: "strikes and retention",
        sqlite: include_str!("../migrations/sqlite/0010_strikes_retention.sql"),
        postgres: include_str!("../migrations/postgres/0010_strikes_retention.sql"),
    },
    Migration {
        version: 11,
        name: "cybertipline submissions",
        sqlite: include_str!("../migrations/sqlite/0011_cybertip_submissions.sql"),
        postgres: include_str!("../migrations/postgres/0011_cybertip_submissions.sql"),
    },
    Migration {
        version: 12,
        name: "coop actions",
        sqlite: include_str!("../migrations/sqlite/0012_coop_actions.sql"),
        postgres: include_str!("../migrations/postgres/0012_coop_actions.sql"),
    },
    Migration {
        version: 13,
        name: "search indexes",
        sqlite: include_str!("../migrations/sqlite/0013_search_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0013_search_indexes.sql"),
    },
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 13;

/// A PostgreSQL advisory lock id that serialises migrations and audit
/// appends across instances ("frankly" in ASCII).
const PG_LOCK_MIGRATE: i64 = 0x0066_7261_6e6b_6c79;
pub(crate) const PG_LOCK_AUDIT: i64 = 0x0066_7261_6e6b_6c7a;

/// Most pieces of work one group commit of [`Db::write`] takes.
pub(crate) const WRITE_BATCH: usize = 64;

/// The database: a writer pool (one connection on SQLite) and a reader pool,
/// and on SQLite the group-commit writer behind [`Db::write`].
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
    writer: AnyPool,
    reader: AnyPool,
    batches: Option<mpsc::Sender<Job>>,
}

/// A boxed future borrowing a transaction.
pub(crate) type BoxFuture<'t, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 't>>;

/// One piece of work for the group-commit writer: it runs in a savepoint of
/// the batch's transaction and says whether to keep it and how to answer
/// once the batch has committed (or failed to).
type Job = Box<dyn for<'t, 'c> FnOnce(&'t mut Transaction<'c, Any>) -> BoxFuture<'t, Ran> + Send>;

struct Ran {
    keep: bool,
    answer: Box<dyn FnOnce(Result<(), String>) + Send>,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ran").field("keep", &self.keep).finish_non_exhaustive()
    }
}

/// The group-commit writer (SQLite): takes the work waiting at that moment
/// (at most [`WRITE_BATCH`]) into one transaction, each piece in a
/// savepoint, so one fsync covers them all and a piece that fails leaves
/// its neighbours as they were; answers each after the commit. Hand-written
/// because it is the transaction boundary itself, as report intake's is.
async fn group_commit(writer: AnyPool, mut jobs: mpsc::Receiver<Job>) {
    let mut pending = Vec::with_capacity(WRITE_BATCH);
    while jobs.recv_many(&mut pending, WRITE_BATCH).await > 0 {
        let mut answers = Vec::with_capacity(pending.len());
        let outcome: Result<(), ServerError> = async {
            let mut tx = writer.begin().await?;
            for job in pending.drain(..) {
                let mut savepoint = sqlx::Acquire::begin(&mut tx).await?;
                let ran = job(&mut savepoint).await;
                if ran.keep {
                    savepoint.commit().await?;
                } else {
                    savepoint.rollback().await?;
                }
                answers.push(ran.answer);
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        // Work not run because the batch failed first is dropped, and its
        // caller told so by the closed channel.
        pending.clear();
        let outcome = outcome.map_err(|e| {
            tracing::error!(error = %e, "group commit failed");
            e.to_string()
        });
        for answer in answers {
            answer(outcome.clone());
        }
    }
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating a
    /// SQLite file if needed, and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, ServerError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(ServerError::Config(format!(
                "database URL must start with sqlite:// or postgres:// (got {:?})",
                url.split(':').next().unwrap_or_default()
            )));
        };
        if backend == Backend::Sqlite {
            private_sqlite_files(url)?;
        }
        let options =
            AnyConnectOptions::from_str(url).map_err(|e| ServerError::Config(format!("database URL: {e}")))?;
        let pool = |max: u32| {
            AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(30)).after_connect(
                move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = FULL",
                                "PRAGMA busy_timeout = 10000",
                                "PRAGMA foreign_keys = ON",
                            ] {
                                conn.execute(pragma).await?;
                            }
                        }
                        Ok(())
                    })
                },
            )
        };
        let (writer, reader) = match backend {
            Backend::Sqlite => {
                let writer = pool(1).connect_with(options.clone()).await?;
                let reader = pool(max_connections.max(2)).connect_with(options).await?;
                (writer, reader)
            }
            Backend::Postgres => {
                let pool = pool(max_connections.max(2)).connect_with(options).await?;
                (pool.clone(), pool)
            }
        };
        let batches = (backend == Backend::Sqlite).then(|| {
            let (sender, receiver) = mpsc::channel(WRITE_BATCH * 4);
            tokio::spawn(group_commit(writer.clone(), receiver));
            sender
        });
        let db = Db { backend, writer, reader, batches };
        db.migrate().await?;
        Ok(db)
    }

    /// The SQLite URL for a file in `dir`, created on first use (mode 0600).
    pub fn sqlite_url(dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", dir.join("frankly.db").display())
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for writes (a single connection on SQLite).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// The pool for reads.
    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Runs `work` in a transaction and commits it; an error rolls back what
    /// it wrote and is returned. On SQLite the transaction is shared with
    /// the other work waiting at that moment (group commit: one fsync for
    /// all; `work` runs in a savepoint of its own); on PostgreSQL it is its
    /// own, as instances write concurrently.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, ServerError>
    where
        T: Send + 'static,
        F: for<'t, 'c> FnOnce(&'t mut Transaction<'c, Any>) -> BoxFuture<'t, Result<T, ServerError>> + Send + 'static,
    {
        let Some(batches) = &self.batches else {
            let mut tx = self.writer.begin().await?;
            let out = work(&mut tx).await?;
            tx.commit().await?;
            return Ok(out);
        };
        let (ack, done) = oneshot::channel::<Result<T, ServerError>>();
        let job: Job = Box::new(move |tx| {
            Box::pin(async move {
                let out = work(tx).await;
                let keep = out.is_ok();
                let answer: Box<dyn FnOnce(Result<(), String>) + Send> = Box::new(move |commit| {
                    let _ = ack.send(match (out, commit) {
                        (Err(e), _) => Err(e),
                        (Ok(v), Ok(())) => Ok(v),
                        (Ok(_), Err(e)) => Err(ServerError::Internal(format!("not committed: {e}"))),
                    });
                });
                Ran { keep, answer }
            })
        });
        batches.send(job).await.map_err(|_| ServerError::Internal("the database writer stopped".into()))?;
        done.await.map_err(|_| ServerError::Internal("not committed: the write batch failed".into()))?
    }

    /// Applies the migrations this database has not seen, in order, each in
    /// its own transaction. Refuses a database from a newer build.
    async fn migrate(&self) -> Result<(), ServerError> {
        let mut tx = self.writer.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_LOCK_MIGRATE).execute(&mut *tx).await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS frankly_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             applied_ms BIGINT NOT NULL)",
        )
        .await?;
        let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM frankly_migrations")
            .fetch_one(&mut *tx)
            .await?
            .try_get("v")?;
        if current > SCHEMA_VERSION {
            return Err(ServerError::Config(format!(
                "the database has schema version {current}, newer than this build's {SCHEMA_VERSION}: upgrade frankly"
            )));
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            if m.version == 6 {
                // Data, not schema: the attachments of reports already stored.
                let moved = crate::attachments::move_out_of_content(&mut tx).await?;
                tracing::info!(reports = moved, "moved report attachments out of the report content");
            }
            sqlx::query("INSERT INTO frankly_migrations (version, name, applied_ms) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(crate::now_ms())
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The `WHERE` clause of a list query built from optional filters, its `$n`
/// parameters numbered in the order they are added, so a filter and its
/// value cannot drift apart (the report, appeal and audit lists).
#[derive(Debug, Default)]
pub(crate) struct Filters {
    clauses: Vec<String>,
    args: Vec<FilterArg>,
}

#[derive(Debug)]
enum FilterArg {
    Text(String),
    Number(i64),
}

impl Filters {
    fn param(&mut self, arg: FilterArg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// `condition $n` (e.g. `"sender_id ="`) with a text value, if there is one.
    pub(crate) fn text(&mut self, condition: &str, value: Option<&str>) {
        if let Some(v) = value {
            let p = self.param(FilterArg::Text(v.to_string()));
            self.clauses.push(format!("{condition} {p}"));
        }
    }

    /// `condition $n` (e.g. `"received_ms >="`) with a number, if there is one.
    pub(crate) fn number(&mut self, condition: &str, value: Option<i64>) {
        if let Some(v) = value {
            let p = self.param(FilterArg::Number(v));
            self.clauses.push(format!("{condition} {p}"));
        }
    }

    /// `column IN (...)` over `values`; none matches nothing.
    pub(crate) fn one_of<'a>(&mut self, column: &str, values: impl IntoIterator<Item = &'a str>) {
        let params: Vec<String> = values.into_iter().map(|v| self.param(FilterArg::Text(v.to_string()))).collect();
        self.clauses.push(if params.is_empty() {
            "1 = 0".to_string()
        } else {
            format!("{column} IN ({})", params.join(", "))
        });
    }

    /// A clause without parameters.
    pub(crate) fn clause(&mut self, sql: &str) {
        self.clauses.push(sql.to_string());
    }

    /// Runs `select WHERE <the filters> order LIMIT limit` on `pool`.
    pub(crate) async fn fetch(
        mut self,
        pool: &AnyPool,
        select: &str,
        order: &str,
        limit: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, ServerError> {
        let limit = self.param(FilterArg::Number(limit));
        let filters =
            if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) };
        let sql = format!("{select}{filters} {order} LIMIT {limit}");
        let mut query = sqlx::query(&sql);
        for arg in self.args {
            query = match arg {
                FilterArg::Text(t) => query.bind(t),
                FilterArg::Number(n) => query.bind(n),
            };
        }
        Ok(query.fetch_all(pool).await?)
    }
}

/// Makes the SQLite database file before SQLite does, with mode 0600 (SQLite
/// gives its `-wal` and `-shm` files the database file's mode), and narrows
/// the mode of a database, WAL or shared-memory file others can read, with a
/// warning: they hold the wrapped keys and every reported plaintext.
fn private_sqlite_files(url: &str) -> Result<(), ServerError> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let path = Path::new(path);
    let io = |e: std::io::Error| ServerError::Config(format!("cannot create {}: {e}", path.display()));
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            let Ok(meta) = std::fs::metadata(&file) else { continue };
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(file = %file.display(), mode = format!("{:o}", mode & 0o777), "narrowed to 0600: the database holds secrets");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
        }
    }
    Ok(())
}
