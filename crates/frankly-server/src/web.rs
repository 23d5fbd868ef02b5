//! The moderator web UI: server-rendered HTML (askama templates compiled
//! into the binary), one small script for keyboard shortcuts, no build step.
//!
//! Every page and form goes through [`Authed`], which loads the session from
//! the cookie (or redirects to the sign-in page); every POST checks the
//! session's CSRF token; report pages and media ask [`Role::may`] through
//! the queue functions; admin pages ask it for `Operation::Administer`.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use zeroize::Zeroizing;

use frankly_review::{Action, DecisionInput, Operation, Queue, Role, Stage, Status};

use crate::auth::{self, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, User};
use crate::queue;
use crate::{AppState, ServerError, StoredVerdict, audit};

/// The content security policy of every page: no inline script or style,
/// nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/prefs", post(prefs))
        .route("/queues/{queue}/claim", post(claim))
        .route("/queues/{queue}/bulk", get(bulk_page).post(bulk_decide))
        .route("/reports/{id}", get(report))
        .route("/reports/{id}/decide", post(decide))
        .route("/reports/{id}/release", post(release))
        .route("/reports/{id}/comments", post(add_comment))
        .route("/reports/{id}/legal-hold", post(legal_hold))
        .route("/reports/{id}/media/{message}/{attachment}", get(media))
        .route("/reports/{id}/media/{message}/{attachment}/strip", get(strip))
        .route("/reports/{id}/media/{message}/{attachment}/bank", post(add_to_bank))
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}/{change}", post(change_user))
        .route("/admin/keys", get(keys).post(create_key))
        .route("/admin/webhooks", get(webhooks_page))
        .route("/admin/webhooks/{id}/retry", post(retry_webhook))
        .route("/admin/keys/{id}/revoke", post(revoke_key))
        .route("/admin/audit", get(audit_page))
        .route(
            "/static/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], include_str!("../static/app.css")) }),
        )
        .route(
            "/static/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], include_str!("../static/app.js")) }),
        )
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}

/// An error page.
#[derive(Debug)]
pub(crate) struct WebError(ServerError);

impl<E: Into<ServerError>> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match &self.0 {
            ServerError::Refused { status, message, .. } => (*status, message.clone()),
            other => {
                tracing::error!(error = %other, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_string())
            }
        };
        let title = status.canonical_reason().unwrap_or("Error");
        match (ErrorPage { title, message: &message }).render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

fn render(t: &impl Template) -> Result<Html<String>, WebError> {
    t.render().map(Html).map_err(|e| WebError(ServerError::Internal(format!("template: {e}"))))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A cookie's name on the wire: `__Host-` prefixed when cookies are
/// `Secure`, so only this host, over TLS, can set it.
fn cookie_name(state: &AppState, name: &str) -> String {
    if state.config().secure_cookies { format!("__Host-{name}") } else { name.to_owned() }
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let name = cookie_name(state, name);
    let secure = if state.config().secure_cookies { "; Secure" } else { "" };
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in request: the session and its cookie token.
pub(crate) struct Authed {
    session: Session,
    token: Zeroizing<String>,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, &cookie_name(state, SESSION_COOKIE)) else {
            return Err(Redirect::to("/login").into_response());
        };
        match auth::session(state.db(), token).await {
            Ok(Some(session)) => Ok(Authed { session, token: Zeroizing::new(token.to_owned()) }),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(WebError(e).into_response()),
        }
    }
}

impl Authed {
    fn user(&self) -> &User {
        &self.session.user
    }

    fn require_admin(&self) -> Result<(), WebError> {
        if self.user().role.may(Operation::Administer) {
            Ok(())
        } else {
            Err(WebError(ServerError::refused(StatusCode::FORBIDDEN, "forbidden", "this page is for admins")))
        }
    }
}

/// A form carrying only the CSRF token.
#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

async fn login_page(State(state): State<AppState>) -> Result<Response, WebError> {
    login_form(&state, None, StatusCode::OK)
}

fn login_form(state: &AppState, error: Option<&str>, status: StatusCode) -> Result<Response, WebError> {
    let csrf = state.inner.login.form_token(crate::now_ms())?;
    let html = render(&LoginPage { csrf: &csrf, error })?;
    Ok((
        status,
        [(
            header::SET_COOKIE,
            set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, Some(crate::login::LOGIN_FORM_MS as u64 / 1000)),
        )],
        html,
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: Zeroizing<String>,
}

async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let now = crate::now_ms();
    // The form's token must be one this server signed, and equal its cookie.
    let expected = cookie(&headers, &cookie_name(&state, LOGIN_CSRF_COOKIE)).unwrap_or_default();
    let guard = &state.inner.login;
    if expected.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), form.csrf.as_bytes()))
        || !guard.form_token_valid(&form.csrf, now)
    {
        return Err(WebError(ServerError::refused(
            StatusCode::FORBIDDEN,
            "csrf",
            "the sign-in form expired or came from elsewhere: reload the page and try again",
        )));
    }
    if !guard.address_allowed(client_address(&state, peer.map(|p| p.0.0), &headers), now) {
        return login_form(
            &state,
            Some("too many sign-in attempts from your address: wait a minute"),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let username = auth::fold_username(&form.username);
    // Names no account can have share one entry, so random names cannot
    // grow the tables or the audit log.
    let key = if auth::valid_username(&username) { username.clone() } else { "(invalid username)".to_owned() };
    let delay = guard.delay(&key, now);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match auth::login(state.db(), &username, &form.password, state.config().session_hours).await {
        Ok(token) => {
            guard.succeeded(&key);
            let age = state.config().session_hours.saturating_mul(3600);
            Ok(([(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, &token, Some(age)))], Redirect::to("/"))
                .into_response())
        }
        Err(ServerError::Refused { status, message, .. }) => {
            crate::login::record_failure(guard, state.db(), state.metrics(), &key, now).await?;
            login_form(&state, Some(&message), status)
        }
        Err(e) => Err(WebError(e)),
    }
}

/// The client's address for the per-address sign-in limit: the TCP peer, or
/// with `trust_forwarded_for` the last `X-Forwarded-For` hop (the one the
/// proxy in front of the server added).
fn client_address(
    state: &AppState,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
) -> Option<std::net::IpAddr> {
    if state.config().trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|a| a.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

async fn logout(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    auth::logout(state.db(), &authed.token, &authed.user().username).await?;
    Ok(([(header::SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", Some(0)))], Redirect::to("/login"))
        .into_response())
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard<'a> {
    user: &'a User,
    csrf: &'a str,
    depths: Vec<queue::Depth>,
    held: Vec<queue::ReportRow>,
    recent: Vec<queue::ReportRow>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
struct Notice {
    notice: Option<String>,
}

async fn dashboard(
    State(state): State<AppState>,
    authed: Authed,
    axum::extract::Query(q): axum::extract::Query<Notice>,
) -> Result<Html<String>, WebError> {
    let user = authed.user();
    let depths =
        queue::depths(state.db()).await?.into_iter().filter(|d| user.role.may(Operation::See(d.queue))).collect();
    let notice = match q.notice.as_deref() {
        Some("empty") => Some("That queue is empty.".to_string()),
        Some("decided") => Some("Decision recorded.".to_string()),
        Some("released") => Some("Report returned to its queue.".to_string()),
        _ => None,
    };
    render(&Dashboard {
        user,
        csrf: &authed.session.csrf,
        depths,
        held: queue::held(state.db(), user).await?,
        recent: queue::recent(state.db(), user, 50).await?,
        notice,
    })
}

#[derive(serde::Deserialize)]
struct PrefsForm {
    #[serde(default)]
    csrf: String,
    reveal_media: Option<String>,
}

async fn prefs(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<PrefsForm>,
) -> Result<Redirect, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    auth::set_reveal_media(state.db(), authed.user().id, form.reveal_media.is_some()).await?;
    Ok(Redirect::to("/"))
}

async fn claim(
    State(state): State<AppState>,
    authed: Authed,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    let lease = i64::try_from(state.config().lease_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let queue: Queue = name.parse().map_err(ServerError::from)?;
    match queue::claim(state.db(), authed.user(), queue, lease).await? {
        Some(id) => Ok(Redirect::to(&format!("/reports/{id}"))),
        None => Ok(Redirect::to("/?notice=empty")),
    }
}

struct MessageView {
    index: usize,
    sender: String,
    by_reporter: bool,
    time: String,
    sequence: u64,
    failure: Option<String>,
    unopened: bool,
    omitted_before: Option<u64>,
    reported: bool,
    text: String,
    attachments: Vec<AttachmentView>,
}

struct AttachmentView {
    index: usize,
    media_type: String,
    image: bool,
    video: Option<VideoView>,
    size: i64,
    /// SHA-256 of the bytes, hex, and whether they are still stored.
    sha256: String,
    stored: bool,
}

/// A video attachment: played blurred and muted, with a strip of frames
/// and a timeline of every hashed frame, matched ones marked.
struct VideoView {
    /// The media type sniffed from the bytes.
    media_type: String,
    /// The strip's frames, as captions.
    strip: Vec<FrameMark>,
    /// Every hashed frame.
    timeline: Vec<FrameMark>,
    /// Hashed frames that matched a banked video.
    matched: usize,
    /// Why the server could not hash it to its end.
    problem: Option<String>,
}

struct FrameMark {
    /// Presentation time, seconds, for seeking.
    seconds: String,
    /// As shown: `m:ss.s`.
    label: String,
    matched: bool,
}

impl FrameMark {
    fn new(seconds: f64, matched: bool) -> Self {
        let s = seconds.max(0.0);
        FrameMark { seconds: format!("{s:.3}"), label: format!("{}:{:04.1}", (s / 60.0).floor(), s % 60.0), matched }
    }
}

/// The video view of attachment `a` of message `m`, if the server hashed it.
fn video_view(stored: &crate::StoredReport, m: usize, a: usize) -> Option<VideoView> {
    let VideoStrip { video, matched, strip } = video_strip(stored, m, a)?;
    let mark = |f: &crate::HashedFrame| FrameMark::new(f.seconds, matched.binary_search(&f.number).is_ok());
    Some(VideoView {
        media_type: video.media_type.clone(),
        strip: video.frames.iter().filter(|f| strip.binary_search(&f.number).is_ok()).map(mark).collect(),
        timeline: video.frames.iter().map(mark).collect(),
        matched: video.frames.iter().filter(|f| matched.binary_search(&f.number).is_ok()).count(),
        problem: video.problem.clone(),
    })
}

/// The frames of attachment `a` of message `m` that matched a banked
/// video, sorted and unique.
fn matched_frames(stored: &crate::StoredReport, m: usize, a: usize) -> Vec<u64> {
    let mut frames: Vec<u64> = stored
        .server_matches
        .iter()
        .filter(|s| s.message == m && s.attachment == a)
        .filter_map(|s| s.video.as_ref())
        .flat_map(|v| v.matched_frames.iter().copied())
        .collect();
    frames.sort_unstable();
    frames.dedup();
    frames
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    user: &'a User,
    csrf: &'a str,
    row: queue::ReportRow,
    received: String,
    order: String,
    order_ok: bool,
    reporter: String,
    note: String,
    messages: Vec<MessageView>,
    evidence: Vec<String>,
    history: Vec<String>,
    comments: Vec<(frankly_api::moderation::CommentDetail, String)>,
    sender_history: Vec<(frankly_api::moderation::SenderReport, String)>,
    strikes: frankly_api::moderation::Strikes,
    /// Each listed strike with its issue and expiry times.
    strike_list: Vec<(frankly_api::moderation::StrikeDetail, String, String)>,
    strike_days: u32,
    hold_since: String,
    purged: Option<String>,
    mine: bool,
    automated: bool,
    actions: Vec<&'static str>,
    /// The match API's banks a claimed report's media can be added to
    /// (empty when the API is off), negative ones marked.
    banks: Vec<(String, bool)>,
    banked: bool,
}

/// UTC time of Unix milliseconds, as `YYYY-MM-DD hh:mm:ss UTC`.
pub(crate) fn utc(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// A video attachment the server hashed: its stored frames, the frames that
/// matched a banked video, and the frames its strip shows (the report page
/// and the strip image agree because both come from here).
struct VideoStrip<'a> {
    video: &'a crate::StoredVideo,
    matched: Vec<u64>,
    strip: Vec<u64>,
}

fn video_strip(stored: &crate::StoredReport, m: usize, a: usize) -> Option<VideoStrip<'_>> {
    let video = stored.videos.iter().find(|v| v.message == m && v.attachment == a)?;
    let matched = matched_frames(stored, m, a);
    let numbers: Vec<u64> = video.frames.iter().map(|f| f.number).collect();
    let strip = crate::strip_frames(&numbers, &matched, crate::STRIP_FRAMES);
    Some(VideoStrip { video, matched, strip })
}

#[derive(serde::Deserialize, Default)]
struct ReportQuery {
    notice: Option<String>,
}

async fn report(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Query(q): Query<ReportQuery>,
) -> Result<Html<String>, WebError> {
    let user = authed.user();
    let view = queue::view(state.db(), user, id).await?;
    let report = &view.stored.report;
    let reporter = &report.reporter;
    let gaps = view.stored.order.as_ref().map(|o| o.gaps.clone()).unwrap_or_default();
    let messages = report
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (text, body) = match &m.opening {
                None if view.row.purged_ms.is_some() => ("[purged under the retention policy]".to_string(), None),
                None => ("[refused on the reporter's device: delivered, content unknown]".to_string(), None),
                Some(o) => match frankly_franking::Body::decode(&o.body) {
                    Ok(b) => (b.text.clone(), Some(b)),
                    Err(e) => (format!("[not a frankly message body ({e}); {} bytes]", o.body.len()), None),
                },
            };
            let verdict = view.stored.verdicts.get(i);
            let omitted_before = gaps.iter().find(|g| g.before == m.delivery.sequence).map(|g| g.missing);
            MessageView {
                index: i,
                sender: m.delivery.sender.to_string(),
                by_reporter: m.delivery.sender.user_id == reporter.user_id,
                time: utc(i64::try_from(m.delivery.timestamp_ms).unwrap_or(0)),
                sequence: m.delivery.sequence,
                failure: match verdict {
                    Some(StoredVerdict::Rejected(why)) => Some(why.clone()),
                    _ => None,
                },
                unopened: verdict == Some(&StoredVerdict::Unopened),
                omitted_before,
                reported: i == report.reported as usize,
                text,
                // From the stored rows, which outlive a purge of the
                // openings; the declared type comes from the opening.
                attachments: view
                    .attachments
                    .iter()
                    .filter(|meta| meta.message == i)
                    .map(|meta| {
                        let j = meta.attachment;
                        let reference = m.opening.as_ref().and_then(|o| o.attachments.get(j));
                        AttachmentView {
                            index: j,
                            media_type: reference
                                .and_then(|a| crate::attachments::declared_type(body.as_ref(), &a.reference))
                                .unwrap_or_else(|| "unknown type".to_string()),
                            image: meta.stored && meta.media_type.as_deref().is_some_and(|t| t.starts_with("image/")),
                            video: if meta.stored { video_view(&view.stored, i, j) } else { None },
                            size: meta.size,
                            sha256: meta.sha256.clone(),
                            stored: meta.stored,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let mut evidence: Vec<String> = view
        .stored
        .server_matches
        .iter()
        .map(|s| {
            let what = format!(
                "server: message {} attachment {} matches {} bank {} ({})",
                s.message,
                s.attachment,
                s.signal.name(),
                s.bank,
                s.labels.join(", ")
            );
            match (&s.video, s.signal) {
                (Some(v), _) => format!(
                    "{what}: {:.0} % of its hashed frames match {:.0} % of the banked frames{}",
                    v.query_percent,
                    v.compared_percent,
                    v.source_id.as_ref().map(|id| format!(" (banked as {id})")).unwrap_or_default()
                ),
                (None, crate::MatchSignal::VideoMd5) => format!("{what}: the MD5 of the file is banked"),
                (None, _) if s.frame > 0 => format!("{what} at PDQ distance {} on frame {}", s.distance, s.frame),
                (None, _) => format!("{what} at PDQ distance {}", s.distance),
            }
        })
        .collect();
    evidence.extend(report.evidence.iter().map(|e| format!("reporter's device: {}: {}", e.kind, e.detail)));
    let mut history: Vec<String> = view
        .decisions
        .iter()
        .map(|d| {
            format!(
                "{}: {} decided {} ({}); ground: {} {}; facts: {}",
                utc(d.decided_ms),
                d.moderator,
                d.action,
                d.restriction,
                d.ground,
                d.ground_reference,
                d.facts
            )
        })
        .collect();
    history
        .extend(view.appeals.iter().map(|a| format!("{}: {} appealed: {}", utc(a.filed_ms), a.appellant, a.statement)));
    let mine = view.row.state().held_by(user.id, crate::now_ms());
    let actions = user.role.actions(view.row.queue, view.row.stage).iter().map(|a| a.name()).collect();
    render(&ReportPage {
        user,
        csrf: &authed.session.csrf,
        received: utc(view.row.received_ms),
        order: view.stored.order_summary(),
        order_ok: view.stored.order.as_ref().is_ok_and(frankly_franking::Ordering::is_complete),
        reporter: reporter.to_string(),
        note: report.note.clone(),
        messages,
        automated: !view.stored.server_matches.is_empty() || !report.evidence.is_empty(),
        evidence,
        history,
        comments: view.comments.iter().map(|c| (c.clone(), utc(c.created_ms))).collect(),
        sender_history: view.sender_history.iter().map(|r| (r.clone(), utc(r.received_ms))).collect(),
        strike_list: view
            .strikes
            .strikes
            .iter()
            .map(|st| (st.clone(), utc(st.issued_ms), utc(st.expires_ms)))
            .collect(),
        strikes: view.strikes.clone(),
        strike_days: state.config().strike_days,
        hold_since: view.row.legal_hold.as_ref().map(|h| utc(h.since_ms)).unwrap_or_default(),
        purged: view.row.purged_ms.map(utc),
        banks: if mine && state.config().match_api {
            crate::match_store::banks(state.db()).await?.into_iter().map(|b| (b.name, b.negative)).collect()
        } else {
            Vec::new()
        },
        banked: q.notice.as_deref() == Some("banked"),
        mine,
        actions,
        row: view.row,
    })
}

#[derive(serde::Deserialize)]
struct BankForm {
    #[serde(default)]
    csrf: String,
    bank: String,
    #[serde(default)]
    labels: String,
}

/// "Add to bank": hashes a reported attachment as the match API hashes
/// uploads (PDQ of a photo, MD5 of a video) and adds it to a bank, audited
/// (`add-to-bank`, the report as subject) in the same transaction; the
/// change flows into the bank's next bundle. Only the moderator holding
/// the report's claim may, as only they may decide it.
async fn add_to_bank(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, message, attachment)): Path<(i64, usize, usize)>,
    Form(form): Form<BankForm>,
) -> Result<Redirect, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    let bad = |m: String| WebError(ServerError::refused(StatusCode::BAD_REQUEST, "invalid_bank", m));
    if !state.config().match_api {
        return Err(bad("the match API is off: there are no banks to add to".into()));
    }
    let user = authed.user();
    let view = queue::view(state.db(), user, id).await?;
    if !view.row.state().held_by(user.id, crate::now_ms()) {
        return Err(WebError(ServerError::refused(
            StatusCode::FORBIDDEN,
            "not_claimed",
            "claim the report first: only the moderator deciding it may bank its media",
        )));
    }
    let bank = crate::match_store::bank(state.db(), &form.bank)
        .await?
        .ok_or_else(|| bad(format!("no bank named {:?}", form.bank)))?;
    let labels: Vec<String> =
        form.labels.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let labels = frankly_match::check_labels(&labels).map_err(bad)?;
    let (bytes, media_type) = queue::media(state.db(), user, id, message, attachment).await?;
    let content = match media_type.as_deref() {
        Some(t) if t.starts_with("image/") => frankly_match::ContentType::Photo,
        Some(t) if t.starts_with("video/") => frankly_match::ContentType::Video,
        _ => return Err(bad("only photos and videos can be banked".into())),
    };
    let slot = crate::guard::slot(&state.inner.hash_slots, "too many uploads are being hashed").await?;
    let hashed = crate::hma::hash_bytes(&state, slot, content, bytes.into(), None).await?;
    let hashed: Vec<_> = hashed.into_iter().filter(|(_, text)| !text.is_empty()).collect();
    if hashed.is_empty() {
        return Err(bad("the photo's PDQ quality is too low to bank (it would match unrelated images)".into()));
    }
    let note = format!("report {id}, message {message}, attachment {attachment}");
    let new = crate::match_store::NewContent { note: Some(&note), metadata: None, labels: &labels };
    let subject = format!("report:{id}");
    crate::match_store::add_content(state.db(), bank.id, &hashed, &new, Some((&user.username, &subject))).await?;
    state.matching().catch_up(state.db()).await?;
    Ok(Redirect::to(&format!("/reports/{id}?notice=banked")))
}

#[derive(serde::Deserialize)]
struct DecideForm {
    #[serde(default)]
    csrf: String,
    action: String,
    #[serde(default)]
    restriction: String,
    #[serde(default)]
    facts: String,
    automated_detection: Option<String>,
    ground: String,
    #[serde(default)]
    ground_reference: String,
    #[serde(default)]
    redress: String,
}

impl DecideForm {
    /// The decision the form states (its rules are checked where it is recorded).
    fn input(self) -> Result<DecisionInput, WebError> {
        let bad = |m: String| WebError(ServerError::refused(StatusCode::BAD_REQUEST, "invalid_decision", m));
        let action = self.action.parse().map_err(|e: frankly_review::ReviewError| bad(e.to_string()))?;
        let ground = self.ground.parse().map_err(|e: frankly_review::ReviewError| bad(e.to_string()))?;
        Ok(DecisionInput {
            action,
            restriction: Some(self.restriction),
            facts: self.facts,
            automated_detection: self.automated_detection.is_some(),
            ground,
            ground_reference: self.ground_reference,
            redress: Some(self.redress),
        })
    }
}

/// What one report of a bulk decision came to, for the page.
struct BulkOutcome {
    report: i64,
    outcome: String,
    ok: bool,
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage<'a> {
    user: &'a User,
    csrf: &'a str,
    queue: Queue,
    /// The queued reports, each with when it was received.
    reports: Vec<(queue::ReportRow, String)>,
    actions: Vec<Action>,
    /// The bulk decision just recorded: its audit entry and each report's outcome.
    batch: Option<i64>,
    outcomes: Vec<BulkOutcome>,
}

/// The queued reports of a queue (up to `MAX_LIST`), each with a checkbox,
/// and one decision form for those ticked: the API's bulk decision.
async fn bulk_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(name): Path<String>,
) -> Result<Html<String>, WebError> {
    let queue: Queue = name.parse().map_err(ServerError::from)?;
    bulk_view(&state, &authed, queue, None, Vec::new()).await
}

async fn bulk_view(
    state: &AppState,
    authed: &Authed,
    queue: Queue,
    batch: Option<i64>,
    outcomes: Vec<BulkOutcome>,
) -> Result<Html<String>, WebError> {
    let user = authed.user();
    let filter = queue::ListFilter {
        queue: Some(queue),
        status: Some(Status::Queued),
        limit: Some(frankly_api::moderation::MAX_LIST),
        ..queue::ListFilter::default()
    };
    let reports = queue::list(state.db(), user, &filter).await?;
    // The actions of every stage listed (an appeal takes uphold or reverse);
    // each report is checked against its own stage when decided.
    let mut actions: Vec<Action> = Vec::new();
    for stage in Stage::ALL.iter().filter(|s| reports.iter().any(|r| r.stage == **s)) {
        for a in user.role.actions(queue, *stage) {
            if !actions.contains(&a) {
                actions.push(a);
            }
        }
    }
    let reports = reports
        .into_iter()
        .map(|r| {
            let when = utc(r.received_ms);
            (r, when)
        })
        .collect();
    render(&BulkPage { user, csrf: &authed.session.csrf, queue, reports, actions, batch, outcomes })
}

/// The bulk form: the decision's fields and a `report-<id>` checkbox per
/// report ticked.
#[derive(serde::Deserialize)]
struct BulkForm {
    #[serde(flatten)]
    decision: DecideForm,
    #[serde(flatten)]
    ticked: std::collections::BTreeMap<String, String>,
}

async fn bulk_decide(
    State(state): State<AppState>,
    authed: Authed,
    Path(name): Path<String>,
    Form(form): Form<BulkForm>,
) -> Result<Html<String>, WebError> {
    authed.session.check_csrf(&form.decision.csrf)?;
    let queue: Queue = name.parse().map_err(ServerError::from)?;
    let bad = |m: String| WebError(ServerError::refused(StatusCode::BAD_REQUEST, "invalid_bulk", m));
    let mut reports = Vec::new();
    for key in form.ticked.keys() {
        let id = key.strip_prefix("report-").and_then(|id| id.parse::<i64>().ok());
        reports.push(id.ok_or_else(|| bad(format!("unknown field {key:?} (reports are ticked as report-<id>)")))?);
    }
    let input = form.decision.input()?;
    let (batch, results) =
        queue::decide_bulk(state.db(), authed.user(), &reports, &input, state.config().strike_days).await?;
    let outcomes = results
        .into_iter()
        .map(|(report, outcome)| match outcome {
            Ok(decided) => {
                state.metrics().decided(input.action.name(), decided.latency_ms);
                BulkOutcome { report, outcome: format!("decided ({})", decided.queue), ok: true }
            }
            Err(e) => BulkOutcome { report, outcome: format!("not decided: {e}"), ok: false },
        })
        .collect();
    bulk_view(&state, &authed, queue, Some(batch), outcomes).await
}

async fn decide(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<DecideForm>,
) -> Result<Redirect, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    let input = form.input()?;
    let decided = queue::decide(state.db(), authed.user(), id, &input, state.config().strike_days).await?;
    state.metrics().decided(input.action.name(), decided.latency_ms);
    Ok(Redirect::to("/?notice=decided"))
}

#[derive(serde::Deserialize)]
struct CommentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

async fn add_comment(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<CommentForm>,
) -> Result<Redirect, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    let comment = queue::comment(state.db(), authed.user(), id, &form.body).await?;
    Ok(Redirect::to(&format!("/reports/{id}#comment-{comment}")))
}

#[derive(serde::Deserialize)]
struct HoldForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    lift: Option<String>,
}

async fn legal_hold(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<HoldForm>,
) -> Result<Redirect, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    let reason = if form.lift.is_some() { None } else { Some(form.reason.as_str()) };
    crate::lifecycle::set_legal_hold(state.db(), authed.user(), id, reason).await?;
    Ok(Redirect::to(&format!("/reports/{id}")))
}

async fn release(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, WebError> {
    authed.session.check_csrf(&form.csrf)?;
    queue::release(state.db(), authed.user(), id).await?;
    Ok(Redirect::to("/?notice=released"))
}

/// An attachment's bytes, typed by what they are (images and videos shown
/// inline, anything else as a download). A single byte range is served as
/// 206 so a browser can seek in a video (without ranges, a video's seekable
/// range is empty); a range request of several ranges gets the whole body.
async fn media(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, message, attachment)): Path<(i64, usize, usize)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (bytes, media_type) = queue::media(state.db(), authed.user(), id, message, attachment).await?;
    let typed = match media_type.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        Some(t) => vec![(header::CONTENT_TYPE, t)],
        None => vec![
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment")),
        ],
    };
    let total = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| http_range_header::parse_range_header(r).and_then(|parsed| parsed.validate(total)));
    let mut response = match range {
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let (start, end) = (*ranges[0].start(), *ranges[0].end());
            let part = bytes[start as usize..=end as usize].to_vec();
            let mut r = (StatusCode::PARTIAL_CONTENT, part).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Some(Err(_)) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
        _ => bytes.into_response(),
    };
    for (k, v) in typed {
        response.headers_mut().insert(k, v);
    }
    response.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// The frame strip of a video attachment: the frames the review page's
/// strip lists, drawn side by side as one JPEG (decoded on the blocking pool
/// within the matching limits; the page blurs it like any media).
async fn strip(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, message, attachment)): Path<(i64, usize, usize)>,
) -> Result<Response, WebError> {
    let (bytes, _, stored) =
        queue::media_of_report(state.db(), authed.user(), id, message, attachment, "strip").await?;
    let frames = video_strip(&stored, message, attachment)
        .ok_or_else(|| ServerError::refused(StatusCode::NOT_FOUND, "not_found", "no frame strip for this attachment"))?
        .strip;
    let max_pixels = state.config().max_decode_pixels;
    // At most `render_concurrency` strips are decoded at once.
    let slot = crate::guard::slot(&state.inner.render_slots, "too many frame strips are being drawn").await?;
    let jpeg = tokio::task::spawn_blocking(move || {
        let jpeg = crate::render_strip(&bytes, &frames, max_pixels);
        drop(slot);
        jpeg
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))?
    .map_err(|e| ServerError::refused(StatusCode::UNPROCESSABLE_ENTITY, "strip", e.to_string()))?;
    let mut response = jpeg.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    user: &'a User,
    csrf: &'a str,
    users: Vec<auth::UserRow>,
    notice: Option<String>,
}

async fn users(State(state): State<AppState>, authed: Authed) -> Result<Html<String>, WebError> {
    authed.require_admin()?;
    render(&UsersPage {
        user: authed.user(),
        csrf: &authed.session.csrf,
        users: auth::users(state.db()).await?,
        notice: None,
    })
}

#[derive(serde::Deserialize)]
struct NewUserForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: Zeroizing<String>,
    role: String,
}

async fn create_user(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<NewUserForm>,
) -> Result<Html<String>, WebError> {
    authed.require_admin()?;
    authed.session.check_csrf(&form.csrf)?;
    let role: Role = form.role.parse().map_err(|e: frankly_review::ReviewError| {
        WebError(ServerError::refused(StatusCode::BAD_REQUEST, "invalid_user", e.to_string()))
    })?;
    let notice =
        match auth::create_user(state.db(), &authed.user().username, &form.username, &form.password, role).await {
            Ok(_) => format!("Created {} ({}).", form.username, role.name()),
            Err(ServerError::Refused { message, .. }) => message,
            Err(e) => return Err(WebError(e)),
        };
    render(&UsersPage {
        user: authed.user(),
        csrf: &authed.session.csrf,
        users: auth::users(state.db()).await?,
        notice: Some(notice),
    })
}

async fn change_user(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, change)): Path<(i64, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, WebError> {
    authed.require_admin()?;
    authed.session.check_csrf(&form.csrf)?;
    let disabled = match change.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(WebError(ServerError::refused(StatusCode::NOT_FOUND, "not_found", "no such change"))),
    };
    if disabled && id == authed.user().id {
        return Err(WebError(ServerError::refused(
            StatusCode::BAD_REQUEST,
            "invalid_user",
            "you cannot disable yourself",
        )));
    }
    auth::set_disabled(state.db(), &authed.user().username, id, disabled).await?;
    Ok(Redirect::to("/admin/users"))
}

struct KeyRow {
    id: i64,
    name: String,
    scopes: String,
    created: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage<'a> {
    user: &'a User,
    csrf: &'a str,
    keys: Vec<KeyRow>,
    notice: Option<String>,
    /// A key just created, shown once.
    created: Option<Zeroizing<String>>,
    match_api: bool,
}

async fn keys_page(
    state: &AppState,
    authed: &Authed,
    notice: Option<String>,
    created: Option<Zeroizing<String>>,
) -> Result<Html<String>, WebError> {
    let keys = crate::match_store::api_keys(state.db())
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            scopes: k.scopes,
            created: utc(k.created_ms),
            revoked: k.revoked_ms.map(utc),
        })
        .collect();
    render(&KeysPage {
        user: authed.user(),
        csrf: &authed.session.csrf,
        keys,
        notice,
        created,
        match_api: state.config().match_api,
    })
}

/// API keys of the match API: listed, created (the key shown once) and
/// revoked by admins.
async fn keys(State(state): State<AppState>, authed: Authed) -> Result<Html<String>, WebError> {
    authed.require_admin()?;
    keys_page(&state, &authed, None, None).await
}

#[derive(serde::Deserialize)]
struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default, rename = "match")]
    matching: Option<String>,
    #[serde(default)]
    curate: Option<String>,
    #[serde(default)]
    bundle: Option<String>,
    #[serde(default)]
    review: Option<String>,
    #[serde(default)]
    account: String,
}

async fn create_key(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<NewKeyForm>,
) -> Result<Html<String>, WebError> {
    authed.require_admin()?;
    authed.session.check_csrf(&form.csrf)?;
    let scopes: Vec<crate::Scope> = [
        (form.hash.is_some(), crate::Scope::Hash),
        (form.matching.is_some(), crate::Scope::Match),
        (form.curate.is_some(), crate::Scope::Curate),
        (form.bundle.is_some(), crate::Scope::Bundle),
        (form.review.is_some(), crate::Scope::Review),
    ]
    .into_iter()
    .filter_map(|(on, scope)| on.then_some(scope))
    .collect();
    let account = Some(form.account.trim()).filter(|a| !a.is_empty());
    match crate::match_store::create_api_key(state.db(), &authed.user().username, &form.name, &scopes, account).await {
        Ok((id, key)) => {
            let notice = format!("Created key {id} ({}). Copy it now: it is not shown again.", form.name.trim());
            keys_page(&state, &authed, Some(notice), Some(key)).await
        }
        Err(ServerError::Refused { message, .. }) => keys_page(&state, &authed, Some(message), None).await,
        Err(e) => Err(WebError(e)),
    }
}

async fn revoke_key(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, WebError> {
    authed.require_admin()?;
    authed.session.check_csrf(&form.csrf)?;
    crate::match_store::revoke_api_key(state.db(), &authed.user().username, id).await?;
    Ok(Redirect::to("/admin/keys"))
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage<'a> {
    user: &'a User,
    csrf: &'a str,
    endpoints: Vec<String>,
    key_id: String,
    dead: Vec<(crate::webhooks::DeadLetter, String)>,
}

/// The webhook endpoints and the dead letters, each with a retry button.
async fn webhooks_page(State(state): State<AppState>, authed: Authed) -> Result<Html<String>, WebError> {
    authed.require_admin()?;
    let dead = crate::webhooks::dead_letters(state.db()).await?.into_iter().map(|d| {
        let when = utc(d.dead_ms);
        (d, when)
    });
    render(&WebhooksPage {
        user: authed.user(),
        csrf: &authed.session.csrf,
        endpoints: state.config().webhooks.iter().map(|w| w.url.clone()).collect(),
        key_id: crate::webhooks::key_id(&state.secrets().webhook_key().verifying_key()),
        dead: dead.collect(),
    })
}

async fn retry_webhook(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, WebError> {
    authed.require_admin()?;
    authed.session.check_csrf(&form.csrf)?;
    crate::webhooks::requeue(state.db(), &authed.user().username, id).await?;
    Ok(Redirect::to("/admin/webhooks"))
}

struct AuditRow {
    seq: i64,
    time: String,
    actor: String,
    action: String,
    subject: String,
    detail: String,
    hash: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    user: &'a User,
    csrf: &'a str,
    chain: String,
    chain_ok: bool,
    actor: String,
    action: String,
    subject: String,
    entries: Vec<AuditRow>,
}

/// The audit log, newest first, filtered as `GET /api/v1/audit` is (actor,
/// action, subject), one page.
async fn audit_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(filter): Query<audit::AuditFilter>,
) -> Result<Html<String>, WebError> {
    authed.require_admin()?;
    let (chain, chain_ok) = match audit::verify(state.db()).await {
        Ok(c) => (format!("Hash chain verified: {} entries, head {}.", c.entries, c.head), true),
        Err(ServerError::AuditChain(why)) => (format!("Hash chain does NOT verify: {why}"), false),
        Err(e) => return Err(WebError(e)),
    };
    let entries = audit::search(state.db(), &filter)
        .await?
        .into_iter()
        .map(|e| AuditRow {
            seq: e.seq,
            time: utc(e.at_ms),
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
            hash: e.hash,
        })
        .collect();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    render(&AuditPage {
        user: authed.user(),
        csrf: &authed.session.csrf,
        chain,
        chain_ok,
        actor: text(&filter.actor),
        action: text(&filter.action),
        subject: text(&filter.subject),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000_123), "2026-11-18 11:06:40 UTC");
    }
}
