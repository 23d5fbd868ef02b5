//! The moderation API under `/api/v1/`: JSON over the same queue functions
//! and the same permission table (`frankly_review::Role::may`) as the web
//! UI, for a trust-and-safety team's own tools.
//!
//! Every call carries `Authorization: Bearer <key>` with an API key of the
//! `review` scope. The key acts for one moderator account: it may do what
//! that account's role may, claims and decisions are the account's, and the
//! audit log names the account. A disabled account's keys stop working at
//! once; a key of another scope is refused (403), a missing or wrong key is
//! 401, both before any body is read.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use frankly_api::ErrorBody;
use frankly_api::moderation::{
    AppealDetail, AppealList, AttachmentDetail, AuditPage, AuditVerification, BulkDecided, BulkDecision, BulkItem,
    Claimed, CommentRecorded, CybertipExport, DecisionDetail, DecisionRecorded, HoldRequest, MessageDetail,
    MessageVerdict, NewComment, QueueDepth, ReportDetail, ReportList, ReportSummary,
};
use frankly_review::{DecisionInput, Operation, Queue};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiJson;
use crate::audit::AuditFilter;
use crate::auth::User;
use crate::error::AppError;
use crate::match_store::Scope;
use crate::queue::{self, AppealFilter, ListFilter, ReportRow, ReportView};
use crate::{AppState, ServerError, StoredVerdict};

/// The OpenAPI document's frame; the paths and schemas come from the
/// handlers' `#[utoipa::path]` annotations as they are routed, so the
/// document cannot list a route the server does not serve or miss one.
#[derive(OpenApi)]
#[openapi(
    info(title = "frankly moderation API", version = "1", description = "Review of verified reports: docs/server.md, \"Moderation API\"."),
    modifiers(&ReviewKey),
    tags((name = "review", description = "Queues, reports, claims, decisions, appeals and media, as a review key's account may"),
        (name = "audit", description = "The audit log, for administrators"))
)]
struct ApiDoc;

/// The `review_key` bearer scheme every operation requires.
struct ReviewKey;

impl utoipa::Modify for ReviewKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "review_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (frk_...) with the review scope, acting for one moderator account"))
                    .build(),
            ),
        );
    }
}

/// The routes and the OpenAPI document they make, at
/// `/api/v1/openapi.json` (served without a key: it describes the API,
/// nothing in it).
pub(crate) fn routes() -> Router<AppState> {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(queues))
        .routes(routes!(claim))
        .routes(routes!(list))
        .routes(routes!(report))
        .routes(routes!(decide))
        .routes(routes!(release))
        .routes(routes!(decide_bulk))
        .routes(routes!(place_hold, lift_hold))
        .routes(routes!(cybertipline))
        .routes(routes!(cybertipline_file))
        .routes(routes!(cybertipline_submit))
        .routes(routes!(comment))
        .routes(routes!(media))
        .routes(routes!(appeals))
        .routes(routes!(audit_search))
        .routes(routes!(audit_verify))
        .split_for_parts();
    let json: Arc<str> = doc.to_pretty_json().unwrap_or_default().into();
    router.route(
        "/api/v1/openapi.json",
        get(move || {
            let json = Arc::clone(&json);
            async move { ([(header::CONTENT_TYPE, "application/json")], json.to_string()) }
        }),
    )
}

/// The answers every operation may give besides its own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its OpenAPI description is used.
enum Refusals {
    /// No key, a wrong or revoked one, or a disabled account.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key lacks the review scope, or the account's role does not allow it.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// The account a review key acts for, checked from the headers before any
/// body is read.
pub(crate) struct Reviewer(pub(crate) User);

fn unauthorized() -> ServerError {
    ServerError::refused(StatusCode::UNAUTHORIZED, "unauthorized", "review API key missing or wrong")
}

impl FromRequestParts<AppState> for Reviewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        let key = crate::match_store::presented_key(state.db(), key.trim()).await?.ok_or_else(unauthorized)?;
        if !key.scopes.contains(&Scope::Review) {
            return Err(ServerError::refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("API key {} lacks the 'review' scope", key.id),
            )
            .into());
        }
        let user = match key.user_id {
            Some(id) => crate::auth::account(state.db(), id).await?,
            None => None,
        };
        Ok(Reviewer(user.ok_or_else(unauthorized)?))
    }
}

pub(crate) fn summary(r: &ReportRow) -> ReportSummary {
    ReportSummary {
        id: r.id,
        report_id: r.report_id.clone(),
        queue: r.queue,
        stage: r.stage,
        status: r.status,
        priority: r.priority,
        received_ms: r.received_ms,
        reason: r.reason.clone(),
        reporter_id: r.reporter_id.clone(),
        sender_id: r.sender_id.clone(),
        messages: r.messages,
        verified: r.verified,
        order_complete: r.chain_ok,
        bank_matches: r.server_matches,
    }
}

/// The queues the account's role may see, with their depths.
#[utoipa::path(get, path = "/api/v1/queues", tag = "review", security(("review_key" = [])),
    responses((status = 200, body = Vec<QueueDepth>), Refusals))]
async fn queues(State(state): State<AppState>, Reviewer(user): Reviewer) -> Result<Json<Vec<QueueDepth>>, AppError> {
    let depths = queue::depths(state.db()).await?;
    Ok(Json(
        depths
            .into_iter()
            .filter(|d| user.role.may(Operation::See(d.queue)))
            .map(|d| QueueDepth { queue: d.queue, queued: d.queued, claimed: d.claimed })
            .collect(),
    ))
}

/// Leases the best report of a queue to the account (or returns the one it holds there).
#[utoipa::path(post, path = "/api/v1/queues/{queue}/claim", tag = "review", security(("review_key" = [])),
    params(("queue" = Queue, Path, description = "The queue")),
    responses((status = 200, body = Claimed), (status = 404, body = ErrorBody, description = "No such queue"), Refusals))]
async fn claim(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(name): Path<String>,
) -> Result<Json<Claimed>, AppError> {
    let queue: Queue = name.parse().map_err(ServerError::from)?;
    let lease = i64::try_from(state.config().lease_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    Ok(Json(Claimed { report: queue::claim(state.db(), &user, queue, lease).await? }))
}

/// Reports the account's role may see, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/v1/reports", tag = "review", security(("review_key" = [])), params(ListFilter),
    responses((status = 200, body = ReportList), (status = 400, body = ErrorBody, description = "An unknown filter or value"), Refusals))]
async fn list(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    filter: Result<Query<ListFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ReportList>, AppError> {
    let Query(filter) = filter.map_err(invalid_filter)?;
    let rows = queue::list(state.db(), &user, &filter).await?;
    Ok(Json(ReportList {
        next_before: next_before(&rows, filter.page_size(), |r| r.id),
        reports: rows.iter().map(summary).collect(),
    }))
}

/// The review page's content as JSON.
pub(crate) fn detail(view: &ReportView, user: &User) -> ReportDetail {
    let report = &view.stored.report;
    let messages = report
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let body = m.opening.as_ref().and_then(|o| frankly_franking::Body::decode(&o.body).ok());
            // From the stored rows, which outlive a purge of the openings;
            // the declared type comes from the opening while it is kept.
            let references: Vec<_> = m.opening.iter().flat_map(|o| o.attachments.iter()).collect();
            let attachments = view
                .attachments
                .iter()
                .filter(|meta| meta.message == i)
                .map(|meta| AttachmentDetail {
                    id: meta.id,
                    declared_type: references
                        .get(meta.attachment)
                        .and_then(|a| crate::attachments::declared_type(body.as_ref(), &a.reference))
                        .unwrap_or_default(),
                    media_type: meta.media_type.clone(),
                    size: meta.size,
                    sha256: meta.sha256.clone(),
                    url: meta.stored.then(|| format!("/api/v1/media/{}", meta.id)),
                })
                .collect();
            MessageDetail {
                index: i,
                sender_user: m.delivery.sender.user_id.clone(),
                sender_device: m.delivery.sender.device_id.clone(),
                by_reporter: m.delivery.sender.user_id == report.reporter.user_id,
                sequence: m.delivery.sequence,
                timestamp_ms: m.delivery.timestamp_ms,
                reported: i == report.reported as usize,
                verdict: match view.stored.verdicts.get(i) {
                    Some(StoredVerdict::Verified) => MessageVerdict::Verified,
                    Some(StoredVerdict::Unopened) => MessageVerdict::Unopened,
                    Some(StoredVerdict::Rejected(why)) => MessageVerdict::Rejected { reason: why.clone() },
                    None => MessageVerdict::Rejected { reason: "no verdict stored".into() },
                },
                text: body.map(|b| b.text),
                attachments,
            }
        })
        .collect();
    let held = view.row.state().held_by(user.id, crate::now_ms());
    ReportDetail {
        report: summary(&view.row),
        order: view.stored.order_summary(),
        messages,
        note: report.note.clone(),
        actions: if held { user.role.actions(view.row.queue, view.row.stage) } else { Vec::new() },
        decisions: view
            .decisions
            .iter()
            .map(|d| DecisionDetail {
                id: d.id,
                appeal: d.appeal,
                moderator: d.moderator.clone(),
                action: d.action,
                restriction: d.restriction.clone(),
                facts: d.facts.clone(),
                automated_detection: d.automated,
                ground: d.ground,
                ground_reference: d.ground_reference.clone(),
                redress: d.redress.clone(),
                decided_ms: d.decided_ms,
            })
            .collect(),
        appeals: view
            .appeals
            .iter()
            .map(|a| AppealDetail {
                id: a.id,
                decision: a.decision,
                appellant: a.appellant.clone(),
                statement: a.statement.clone(),
                filed_ms: a.filed_ms,
            })
            .collect(),
        comments: view.comments.clone(),
        sender_history: view.sender_history.clone(),
        strikes: view.strikes.clone(),
        purged_ms: view.row.purged_ms,
        legal_hold: view.row.legal_hold.clone(),
    }
}

/// Comments on a report the account's role may see (audited).
#[utoipa::path(post, path = "/api/v1/reports/{id}/comments", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")), request_body = NewComment,
    responses((status = 200, body = CommentRecorded), (status = 400, body = ErrorBody, description = "Empty or too long (invalid_comment)"),
        (status = 404, body = ErrorBody), Refusals))]
async fn comment(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<NewComment>,
) -> Result<Json<CommentRecorded>, AppError> {
    Ok(Json(CommentRecorded { id: queue::comment(state.db(), &user, id, &input.body).await? }))
}

/// The verified conversation of a report, with per-message verdicts, attachments, decisions and appeals (audited).
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")),
    responses((status = 200, body = ReportDetail), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody, description = "Stored by a build this one cannot show"), Refusals))]
async fn report(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
) -> Result<Json<ReportDetail>, AppError> {
    let view = queue::view(state.db(), &user, id).await?;
    Ok(Json(detail(&view, &user)))
}

/// Decides a report the account holds, with the DSA statement of reasons.
#[utoipa::path(post, path = "/api/v1/reports/{id}/decision", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")), request_body = DecisionInput,
    responses((status = 200, body = DecisionRecorded), (status = 400, body = ErrorBody, description = "The decision breaks a rule (invalid_decision)"),
        (status = 409, body = ErrorBody, description = "The account does not hold the report (not_claimed)"), Refusals))]
async fn decide(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<DecisionInput>,
) -> Result<Json<DecisionRecorded>, AppError> {
    let decided = queue::decide(state.db(), &user, id, &input, state.config().strike_days).await?;
    state.metrics().decided(input.action.name(), decided.latency_ms);
    Ok(Json(DecisionRecorded { decision: decided.decision, queue: decided.queue }))
}

/// Gives a held report back to its queue.
#[utoipa::path(post, path = "/api/v1/reports/{id}/release", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")),
    responses((status = 204, description = "Released"), (status = 409, body = ErrorBody, description = "Not held by the account"), Refusals))]
async fn release(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    queue::release(state.db(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An attachment's bytes by id: an inline image or video type as sniffed at
/// intake, otherwise a download (audited).
#[utoipa::path(get, path = "/api/v1/media/{id}", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The attachment")),
    responses((status = 200, description = "The bytes, typed as sniffed", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody, description = "Purged under the retention policy"), Refusals))]
async fn media(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (bytes, meta) = queue::media_by_id(state.db(), &user, id).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    match meta.media_type.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        Some(t) => {
            headers.insert(header::CONTENT_TYPE, t);
        }
        None => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(response)
}

/// Decides up to 1000 reports with one statement of reasons: each report
/// queued or held by the account is claimed and decided as a single
/// decision would be; a refused report (decided already, held by another
/// moderator, decided by this account before, a queue the role cannot see)
/// is answered with its error and its neighbours are decided all the same.
/// One audit entry records the bulk decision and one each report's.
#[utoipa::path(post, path = "/api/v1/decisions", tag = "review", security(("review_key" = [])),
    request_body = BulkDecision,
    responses((status = 200, body = BulkDecided), (status = 400, body = ErrorBody,
        description = "No reports or more than 1000 (invalid_bulk), or the statement breaks a rule (invalid_decision)"), Refusals))]
async fn decide_bulk(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    ApiJson(input): ApiJson<BulkDecision>,
) -> Result<Json<BulkDecided>, AppError> {
    let (batch, outcomes) =
        queue::decide_bulk(state.db(), &user, &input.reports, &input.decision, state.config().strike_days).await?;
    let results = outcomes
        .into_iter()
        .map(|(report, outcome)| match outcome {
            Ok(decided) => {
                state.metrics().decided(input.decision.action.name(), decided.latency_ms);
                BulkItem { report, decision: Some(decided.decision), queue: Some(decided.queue), error: None }
            }
            Err(e) => BulkItem {
                report,
                decision: None,
                queue: None,
                error: Some(ErrorBody { error: e.code().into(), message: e.to_string(), message_index: None }),
            },
        })
        .collect();
    Ok(Json(BulkDecided { batch, results }))
}

/// Places a legal hold on a report (administrators): it is never purged
/// while held. Placing it again replaces the reason and keeps the date.
#[utoipa::path(put, path = "/api/v1/reports/{id}/legal-hold", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")), request_body = HoldRequest,
    responses((status = 204, description = "Held"), (status = 400, body = ErrorBody, description = "No reason, or too long (invalid_hold)"),
        (status = 404, body = ErrorBody), Refusals))]
async fn place_hold(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<HoldRequest>,
) -> Result<StatusCode, AppError> {
    crate::lifecycle::set_legal_hold(state.db(), &user, id, Some(&input.reason)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a report's legal hold (administrators); retention applies again.
#[utoipa::path(delete, path = "/api/v1/reports/{id}/legal-hold", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")),
    responses((status = 204, description = "Lifted"), (status = 404, body = ErrorBody), Refusals))]
async fn lift_hold(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    crate::lifecycle::set_legal_hold(state.db(), &user, id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn cybertip_config(state: &AppState) -> Result<&crate::CybertipConfig, ServerError> {
    state.config().cybertipline.as_ref().ok_or_else(|| {
        ServerError::refused(
            StatusCode::CONFLICT,
            "cybertipline_not_configured",
            "the CyberTipline export needs [cybertipline] in the configuration (docs/server.md)",
        )
    })
}

/// The CyberTipline export of a report referred to an authority (a role
/// that may refer it): NCMEC's `<report>` document and each verified
/// attachment's hashes (audited).
#[utoipa::path(get, path = "/api/v1/reports/{id}/cybertipline", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")),
    responses((status = 200, body = CybertipExport), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not referred to an authority (not_referred), or no [cybertipline] configuration"),
        (status = 410, body = ErrorBody, description = "Purged"), Refusals))]
async fn cybertipline(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
) -> Result<Json<CybertipExport>, AppError> {
    let config = cybertip_config(&state)?;
    let max = state.config().max_decode_pixels;
    Ok(Json(crate::cybertip::export(state.db(), &user, id, config, max, crate::now_ms()).await?))
}

/// NCMEC's ids for a file's details.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct NcmecIds {
    /// The report id `/submit` answered.
    report_id: i64,
    /// The file id `/upload` answered.
    file_id: String,
}

/// The `<fileDetails>` document of a verified attachment of a referred
/// report, with the ids NCMEC assigned (audited).
#[utoipa::path(get, path = "/api/v1/reports/{id}/cybertipline/files/{attachment}", tag = "review",
    security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report"), ("attachment" = i64, Path, description = "The attachment"), NcmecIds),
    responses((status = 200, description = "The fileDetails XML", content_type = "application/xml"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), Refusals))]
async fn cybertipline_file(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path((id, attachment)): Path<(i64, i64)>,
    ids: Result<Query<NcmecIds>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(ids) = ids.map_err(|e| ServerError::refused(StatusCode::BAD_REQUEST, "invalid_ids", e.body_text()))?;
    cybertip_config(&state)?;
    let max = state.config().max_decode_pixels;
    let xml = crate::cybertip::file_details(
        state.db(),
        &user,
        id,
        attachment,
        (ids.report_id, &ids.file_id),
        max,
        crate::now_ms(),
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response())
}

/// Submits a referred report to NCMEC's CyberTipline (`[cybertipline]
/// endpoint` and `credentials_file` configured; off by default): the
/// report, each verified attachment and its details, then finish; a
/// failure after NCMEC opened the report retracts it. Audited.
#[utoipa::path(post, path = "/api/v1/reports/{id}/cybertipline/submit", tag = "review", security(("review_key" = [])),
    params(("id" = i64, Path, description = "The report")),
    responses((status = 200, body = frankly_api::moderation::CybertipSubmitted),
        (status = 409, body = ErrorBody, description = "Not referred, submission off, or submitted already (already_submitted)"),
        (status = 502, body = ErrorBody, description = "NCMEC refused or could not be reached (ncmec_failed)"), Refusals))]
async fn cybertipline_submit(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    Path(id): Path<i64>,
) -> Result<Json<frankly_api::moderation::CybertipSubmitted>, AppError> {
    let config = cybertip_config(&state)?;
    let max = state.config().max_decode_pixels;
    Ok(Json(crate::cybertip::submit(state.db(), &user, id, config, max).await?))
}

/// A page's `next_before`: its last item's key when the page is full (a
/// shorter page is the last).
fn next_before<T>(items: &[T], page_size: i64, key: impl Fn(&T) -> i64) -> Option<i64> {
    let full = i64::try_from(items.len()).unwrap_or(i64::MAX) == page_size;
    if full { items.last().map(key) } else { None }
}

fn invalid_filter(e: axum::extract::rejection::QueryRejection) -> ServerError {
    ServerError::refused(StatusCode::BAD_REQUEST, "invalid_filter", e.body_text())
}

/// Appeals on reports in the queues the account's role may see, newest
/// first, open or answered.
#[utoipa::path(get, path = "/api/v1/appeals", tag = "review", security(("review_key" = [])), params(AppealFilter),
    responses((status = 200, body = AppealList), (status = 400, body = ErrorBody, description = "An unknown filter or value"), Refusals))]
async fn appeals(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    filter: Result<Query<AppealFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AppealList>, AppError> {
    let Query(filter) = filter.map_err(invalid_filter)?;
    let appeals = queue::appeals(state.db(), &user, &filter).await?;
    Ok(Json(AppealList { next_before: next_before(&appeals, filter.page_size(), |a| a.id), appeals }))
}

fn administer(user: &User) -> Result<(), ServerError> {
    if user.role.may(Operation::Administer) { Ok(()) } else { Err(frankly_review::ReviewError::Forbidden.into()) }
}

/// Audit entries matching the filter, newest first (administrators).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("review_key" = [])), params(AuditFilter),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody, description = "An unknown filter or value"), Refusals))]
async fn audit_search(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, AppError> {
    administer(&user)?;
    let Query(filter) = filter.map_err(invalid_filter)?;
    let entries = crate::audit::search(state.db(), &filter).await?;
    Ok(Json(AuditPage { next_before: next_before(&entries, filter.page_size(), |e| e.seq), entries }))
}

/// The whole hash chain recomputed from entry 1 (administrators).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("review_key" = [])),
    responses((status = 200, body = AuditVerification), Refusals))]
async fn audit_verify(
    State(state): State<AppState>,
    Reviewer(user): Reviewer,
) -> Result<Json<AuditVerification>, AppError> {
    administer(&user)?;
    Ok(Json(match crate::audit::verify(state.db()).await {
        Ok(c) => AuditVerification { intact: true, entries: c.entries, head: c.head, problem: None },
        Err(ServerError::AuditChain(why)) => {
            AuditVerification { intact: false, entries: 0, head: String::new(), problem: Some(why) }
        }
        Err(e) => return Err(e.into()),
    }))
}
