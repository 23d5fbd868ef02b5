//! Moderator accounts, sessions and CSRF protection.
//!
//! - Passwords are hashed with Argon2id (RFC 9106 parameters of the `argon2`
//!   crate's defaults) with a random salt; verification runs on the blocking
//!   pool and failures take the same path whether or not the user exists.
//! - A session is a random 32-byte token in an `HttpOnly`, `SameSite=Strict`
//!   cookie (`Secure` when configured); the database stores only its
//!   SHA-256, so a database leak does not hand out sessions.
//! - Every session has a CSRF token that each form carries and each POST
//!   handler checks in constant time; the login form, which precedes any
//!   session, carries a token the server signed (`crate::login`) that must
//!   also equal its cookie. With `secure_cookies`, cookie names have the
//!   `__Host-` prefix, so a sibling domain cannot set them.
//! - Roles decide what a user sees and does: `frankly_review::Role::may` is
//!   the one permission table, and every route goes through it.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use frankly_review::Role;

use crate::ServerError;
use crate::db::Db;
use crate::secrets::random32;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (Argon2 hashes any length; this bounds work).
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest username.
pub(crate) const MAX_USERNAME_BYTES: usize = 64;
/// The session cookie (`__Host-frankly_session` when `secure_cookies` is on).
pub(crate) const SESSION_COOKIE: &str = "frankly_session";
/// The login form's CSRF cookie (`__Host-` prefixed likewise).
pub(crate) const LOGIN_CSRF_COOKIE: &str = "frankly_login_csrf";

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Media revealed by default (otherwise blurred and grayscale).
    pub reveal_media: bool,
}

/// A session: the user and the CSRF token its forms must carry.
#[derive(Clone)]
pub(crate) struct Session {
    /// Who.
    pub user: User,
    /// The CSRF token.
    pub csrf: Zeroizing<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("user", &self.user).finish_non_exhaustive()
    }
}

impl Session {
    /// Refuses a form whose CSRF token differs (constant time).
    pub(crate) fn check_csrf(&self, token: &str) -> Result<(), ServerError> {
        if bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(ServerError::refused(StatusCode::FORBIDDEN, "csrf", "the form's CSRF token is missing or wrong"))
        }
    }
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A random token, hex.
pub(crate) fn new_token() -> Result<Zeroizing<String>, ServerError> {
    Ok(Zeroizing::new(hex::encode(random32()?.as_ref())))
}

fn hash_password(password: &str) -> Result<String, ServerError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ServerError::Internal(format!("randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ServerError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServerError::Internal(format!("argon2: {e}")))
}

/// A hash of a password nobody has, so that an unknown user costs the same.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$y8IuA6XkCJbGmR9zV0w7lGfRkD3m4sKzYqvYpS2PbBQ";

fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// Folds a username as typed to the stored form: usernames are ASCII and
/// case-insensitive, stored in lower case (`MOD1` signs in as `mod1`).
pub fn fold_username(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Whether `username` (folded) is a name an account can have: 1 to
/// [`MAX_USERNAME_BYTES`] lower-case letters, digits, `-`, `_` and `.`.
pub(crate) fn valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= MAX_USERNAME_BYTES
        && username.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.'))
}

/// Checks a new (folded) username and password.
fn check_new_user(username: &str, password: &str) -> Result<(), ServerError> {
    let bad = |m: String| Err(ServerError::refused(StatusCode::BAD_REQUEST, "invalid_user", m));
    if !valid_username(username) {
        return bad(format!("usernames are 1 to {MAX_USERNAME_BYTES} characters of letters, digits, '-', '_' and '.'"));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return bad(format!("passwords need at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return bad(format!("passwords are at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// Creates a user (refusing a taken name), recorded in the audit log.
pub async fn create_user(db: &Db, actor: &str, username: &str, password: &str, role: Role) -> Result<i64, ServerError> {
    let username = &fold_username(username);
    check_new_user(username, password)?;
    let password = Zeroizing::new(password.to_owned());
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))??;
    let mut tx = db.writer().begin().await?;
    let row = sqlx::query(
        "INSERT INTO users (username, role, password_hash, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(role.name())
    .bind(&hash)
    .bind(crate::now_ms())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(ServerError::refused(StatusCode::CONFLICT, "user_exists", format!("user {username:?} exists")));
    };
    crate::audit::append(&mut tx, db.backend(), actor, "create-user", &format!("user:{username}"), role.name()).await?;
    tx.commit().await?;
    Ok(row.try_get("id")?)
}

/// Disables or enables a user; a disabled user's sessions end.
pub(crate) async fn set_disabled(db: &Db, actor: &str, user_id: i64, disabled: bool) -> Result<(), ServerError> {
    let mut tx = db.writer().begin().await?;
    let name: Option<String> = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2 RETURNING username")
        .bind(i64::from(disabled))
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("username"))
        .transpose()?;
    let Some(name) = name else {
        return Err(ServerError::refused(StatusCode::NOT_FOUND, "not_found", "no such user"));
    };
    if disabled {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    }
    let action = if disabled { "disable-user" } else { "enable-user" };
    crate::audit::append(&mut tx, db.backend(), actor, action, &format!("user:{name}"), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Checks a password; on success opens a session and returns its cookie token.
pub(crate) async fn login(
    db: &Db,
    username: &str,
    password: &str,
    hours: u64,
) -> Result<Zeroizing<String>, ServerError> {
    if !valid_username(username) {
        // No account can have this name: refused without a password hash.
        return Err(ServerError::refused(StatusCode::UNAUTHORIZED, "login", "wrong username or password"));
    }
    let row = sqlx::query("SELECT id, password_hash, disabled FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(db.reader())
        .await?;
    let (id, stored, disabled) = match &row {
        Some(r) => (
            r.try_get::<i64, _>("id")?,
            r.try_get::<String, _>("password_hash")?,
            r.try_get::<i64, _>("disabled")? != 0,
        ),
        None => (0, DUMMY_HASH.to_owned(), true),
    };
    let password = Zeroizing::new(password.to_owned());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    if !ok || disabled {
        return Err(ServerError::refused(StatusCode::UNAUTHORIZED, "login", "wrong username or password"));
    }
    let token = new_token()?;
    let csrf = new_token()?;
    let expires = crate::now_ms().saturating_add(i64::try_from(hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX));
    let mut tx = db.writer().begin().await?;
    sqlx::query("DELETE FROM sessions WHERE expires_ms < $1").bind(crate::now_ms()).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf, expires_ms) VALUES ($1, $2, $3, $4)")
        .bind(token_hash(&token))
        .bind(id)
        .bind(csrf.as_str())
        .bind(expires)
        .execute(&mut *tx)
        .await?;
    crate::audit::append(&mut tx, db.backend(), username, "login", &format!("user:{username}"), "").await?;
    tx.commit().await?;
    Ok(token)
}

/// The session of a cookie token, if it is live and its user enabled.
pub(crate) async fn session(db: &Db, token: &str) -> Result<Option<Session>, ServerError> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.role, u.reveal_media, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_ms > $2 AND u.disabled = 0",
    )
    .bind(token_hash(token))
    .bind(crate::now_ms())
    .fetch_optional(db.reader())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: String = row.try_get("role")?;
    Ok(Some(Session {
        user: User {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            role: role.parse().map_err(|e| ServerError::Internal(format!("stored {e}")))?,
            reveal_media: row.try_get::<i64, _>("reveal_media")? != 0,
        },
        csrf: Zeroizing::new(row.try_get("csrf")?),
    }))
}

/// Ends a session.
pub(crate) async fn logout(db: &Db, token: &str, username: &str) -> Result<(), ServerError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash(token)).execute(&mut *tx).await?;
    crate::audit::append(&mut tx, db.backend(), username, "logout", &format!("user:{username}"), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a user's media preference.
pub(crate) async fn set_reveal_media(db: &Db, user_id: i64, reveal: bool) -> Result<(), ServerError> {
    sqlx::query("UPDATE users SET reveal_media = $1 WHERE id = $2")
        .bind(i64::from(reveal))
        .bind(user_id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// A user row for the admin page.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct UserRow {
    /// Id.
    pub id: i64,
    /// Name.
    pub username: String,
    /// Role name.
    pub role: String,
    /// Disabled.
    pub disabled: bool,
}

/// All users.
/// The enabled account `id` (what a review key acts for), or `None` when it
/// is gone or disabled.
pub(crate) async fn account(db: &Db, id: i64) -> Result<Option<User>, ServerError> {
    let row = sqlx::query("SELECT id, username, role, reveal_media FROM users WHERE id = $1 AND disabled = 0")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    row.map(|r| {
        let role: String = r.try_get("role")?;
        Ok(User {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            role: role.parse().map_err(|e| ServerError::Internal(format!("stored {e}")))?,
            reveal_media: r.try_get::<i64, _>("reveal_media")? != 0,
        })
    })
    .transpose()
}

/// The enabled account named `username` (folded as at sign-in).
pub(crate) async fn account_by_name(db: &Db, username: &str) -> Result<Option<User>, ServerError> {
    let row = sqlx::query("SELECT id FROM users WHERE username = $1 AND disabled = 0")
        .bind(fold_username(username))
        .fetch_optional(db.reader())
        .await?;
    match row {
        Some(r) => account(db, r.try_get("id")?).await,
        None => Ok(None),
    }
}

pub(crate) async fn users(db: &Db) -> Result<Vec<UserRow>, ServerError> {
    let rows =
        sqlx::query("SELECT id, username, role, disabled FROM users ORDER BY username").fetch_all(db.reader()).await?;
    rows.iter()
        .map(|r| {
            Ok(UserRow {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                role: r.try_get("role")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
            })
        })
        .collect()
}

/// Hashes a device token for the relay's table.
pub(crate) fn device_token_hash(token: &str) -> Vec<u8> {
    token_hash(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_parses_and_matches_nothing_common() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("password", DUMMY_HASH));
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
    }
}
