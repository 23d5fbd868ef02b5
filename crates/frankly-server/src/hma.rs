//! HMA's HTTP API (OpenMediaMatch 1.1.7), so that its clients (ROOST's
//! Coop, matrix-org's policyserv, scripts written against HMA) work when
//! pointed at frankly: the same paths, parameters, response fields, status
//! codes and error messages, checked against HMA's source in
//! `tests/hma.rs`. HTTP only: the rules are `frankly_match`'s, the SQL
//! `match_store`'s.
//!
//! Differences, each on purpose:
//! - **Auth.** HMA has none. Here every `/h`, `/m` and `/c` request needs an
//!   API key (`Authorization: Bearer frk_...`) with the route's scope, as
//!   hma-matrix's wrapper asks, unless the configuration opens that scope
//!   (`match_api_open_scopes`, for a matcher on a private network whose
//!   clients cannot send a header). 401 `Authentication required` or 403
//!   naming the missing scope.
//! - **Freshness.** A change is in the index before the curation request
//!   returns: no 60 s rebuild, no 503 `index not yet ready`, no stale
//!   deleted ids in `raw_lookup`.
//! - **Exactness** at every distance, and `max_distance` (at most the
//!   threshold) on lookups.
//! - **Negative banks** (`"negative": true` at creation): an enabled entry
//!   in one that matches suppresses every match of the query.
//! - **`url=` fetching** is off unless `url_fetch_hosts` lists hosts: a
//!   request that would fetch a URL is then refused with 403. When on, it
//!   is bounded as [`crate::fetch`] says (HMA fetches any URL when its
//!   allowlist is empty).
//! - Content ids that are not digits get a JSON 404, not Flask's HTML one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use frankly_bank::SignalType;
use frankly_match::{
    BankName, ContentType, LookupError, LookupOptions, RawMatch, hash_content, parse_signal, python_random,
    select_signal_types,
};
use serde_json::{Value, json};

use crate::match_store::{self, BankRow, NewContent, Scope};
use crate::{AppState, ServerError};

/// Longest note on banked content (HMA's limit).
pub const MAX_NOTE_CHARS: usize = 255;
/// Largest upload `POST /h/hash`, `POST /m/lookup` and
/// `POST /c/bank/<name>/content` take, whole multipart body included.
pub const MAX_UPLOAD_BYTES: usize = 32 << 20;
/// How far ahead `disable_until_ts` may be (HMA's five years).
pub const MAX_DISABLE_AHEAD_SECS: i64 = 5 * 365 * 24 * 3600;

/// The routes, mounted when `match_api` is on.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status))
        .route("/status/live", get(status))
        .route("/c/banks", get(list_banks).post(create_bank))
        .route("/c/bank/{bank}", get(show_bank).put(update_bank).delete(delete_bank))
        .route("/c/bank/{bank}/signal", post(add_signals))
        .route("/c/bank/{bank}/content", post(add_content))
        .route("/c/bank/{bank}/content/{id}", get(show_content).put(update_content).delete(delete_content))
        .route("/c/signal_type", get(signal_types))
        .route("/c/content_type", get(content_types))
        .route("/h/hash", get(hash_url).post(hash_upload))
        .route("/m/lookup", get(lookup).post(lookup_upload))
        .route("/m/raw_lookup", get(raw_lookup))
        .route("/m/compare", post(compare))
        .route("/m/index/status", get(index_status))
}

/// `request` with every run of slashes in its path merged into one, as
/// werkzeug routes it.
pub(crate) fn merge_slashes(mut request: axum::extract::Request) -> axum::extract::Request {
    let uri = request.uri();
    if !uri.path().contains("//") {
        return request;
    }
    let mut path = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
    }
    if let Some(query) = uri.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    if let Ok(merged) = path.parse() {
        parts.path_and_query = Some(merged);
        if let Ok(merged) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = merged;
        }
    }
    request
}

/// An HMA error: `{"message": ...}` with its status, or (422) pydantic's
/// list of validation errors.
#[derive(Debug)]
pub(crate) struct HmaError(StatusCode, Value);

pub(crate) fn fail(status: StatusCode, message: impl Into<String>) -> HmaError {
    HmaError(status, json!({ "message": message.into() }))
}

pub(crate) fn bad(message: impl Into<String>) -> HmaError {
    fail(StatusCode::BAD_REQUEST, message)
}

impl From<ServerError> for HmaError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::Refused { status, message, .. } => fail(status, message),
            other => {
                tracing::error!(error = %other, "match API");
                fail(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
            }
        }
    }
}

impl From<sqlx::Error> for HmaError {
    fn from(e: sqlx::Error) -> Self {
        ServerError::from(e).into()
    }
}

impl IntoResponse for HmaError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

type Reply = Result<Response, HmaError>;

fn ok(value: Value) -> Reply {
    Ok(axum::Json(value).into_response())
}

/// Checks the request's API key for `scope` (unless the scope is open).
pub(crate) async fn authorize(state: &AppState, headers: &HeaderMap, scope: Scope) -> Result<(), HmaError> {
    if state.config().match_api_open_scopes.iter().any(|s| s == scope.name()) {
        return Ok(());
    }
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| fail(StatusCode::UNAUTHORIZED, "Authentication required"))?;
    match match_store::presented_key(state.db(), key.trim()).await?.map(|k| k.scopes) {
        None => Err(fail(StatusCode::UNAUTHORIZED, "Authentication required")),
        Some(scopes) if scopes.contains(&scope) => Ok(()),
        Some(_) => Err(fail(StatusCode::FORBIDDEN, format!("this API key lacks the '{}' scope", scope.name()))),
    }
}

/// Admits a lookup, or refuses it at once with 503 `busy` when
/// `match_lookup_queue` lookups are in flight.
fn admit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, HmaError> {
    Arc::clone(&state.inner.lookup_slots).try_acquire_owned().map_err(|_| {
        HmaError::from(ServerError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many lookups in flight; retry shortly",
        ))
    })
}

fn now_s() -> i64 {
    crate::now_ms() / 1000
}

/// A JSON object body, or HMA's 415/400.
fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Map<String, Value>, HmaError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !is_json {
        return Err(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad("Request input was not a dict")),
        Err(_) => Err(bad("The browser (or proxy) sent a request that this server could not understand.")),
    }
}

/// A request-model validation failure, in pydantic's list form (422):
/// `[{"type", "loc", "msg", "input"}]`, `loc` empty for the whole body.
fn invalid(field: &str, kind: &str, msg: &str, input: Option<&Value>) -> HmaError {
    let loc: Vec<&str> = if field == "body" { Vec::new() } else { vec![field] };
    HmaError(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([{ "type": kind, "loc": loc, "msg": msg, "input": input.cloned().unwrap_or(Value::Null) }]),
    )
}

/// A float as pydantic's lax mode reads it: a number or a numeric string.
fn lax_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bank_json(bank: &BankRow) -> Value {
    json!({ "matching_enabled_ratio": bank.matching_enabled_ratio, "name": bank.name })
}

fn note_of(v: Option<&Value>) -> Result<Option<String>, HmaError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_NOTE_CHARS => {
            Err(bad(format!("note must be at most {MAX_NOTE_CHARS} characters")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Bool(false)) => Ok(None),
        Some(_) => Err(bad("note should be a string")),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    // The index is loaded before the server listens and changes in place:
    // never INDEX-NOT-LOADED or INDEX-STALE.
    let _ = &state;
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], "I-AM-ALIVE").into_response()
}

async fn list_banks(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    let banks = match_store::banks(state.db()).await?;
    ok(Value::Array(banks.iter().map(bank_json).collect()))
}

async fn create_bank(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    let body = match json_object(&headers, &body) {
        Ok(body) => body,
        Err(_) => return Err(invalid("body", "model_type", "Input should be a valid dictionary", None)),
    };
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(invalid("name", "string_type", "Input should be a valid string", Some(v))),
        None => return Err(invalid("name", "missing", "Field required", Some(&Value::Object(body.clone())))),
    };
    let ratio = match body.get("enabled_ratio") {
        Some(Value::Null) => match body.get("enabled") {
            Some(Value::Bool(false)) => 0.0,
            _ => 1.0,
        },
        Some(v) => lax_float(v)
            .ok_or_else(|| invalid("enabled_ratio", "float_parsing", "Input should be a valid number", Some(v)))?,
        None => 1.0,
    };
    let negative = matches!(body.get("negative"), Some(Value::Bool(true)));
    let name = BankName::parse(&name).map_err(|e| bad(e.0))?;
    let bank = match_store::create_bank(state.db(), name.as_str(), ratio, negative)
        .await?
        .ok_or_else(|| fail(StatusCode::FORBIDDEN, "Bank already exists"))?;
    sync(&state).await?;
    Ok((StatusCode::CREATED, axum::Json(bank_json(&bank))).into_response())
}

async fn bank_or_404(state: &AppState, name: &str) -> Result<BankRow, HmaError> {
    match_store::bank(state.db(), name)
        .await?
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("bank '{name}' not found")))
}

async fn show_bank(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    ok(bank_json(&bank_or_404(&state, &name).await?))
}

async fn update_bank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    let body = json_object(&headers, &body)
        .map_err(|_| invalid("body", "model_type", "Input should be a valid dictionary", None))?;
    let mut bank =
        match_store::bank(state.db(), &name).await?.ok_or_else(|| fail(StatusCode::NOT_FOUND, "Bank not found"))?;
    let mut ratio_as_int = None;
    if let Some(v) = body.get("enabled_ratio").filter(|v| !v.is_null()) {
        bank.matching_enabled_ratio = lax_float(v)
            .ok_or_else(|| invalid("enabled_ratio", "float_parsing", "Input should be a valid number", Some(v)))?;
    } else if let Some(Value::Bool(enabled)) = body.get("enabled") {
        bank.matching_enabled_ratio = if *enabled { 1.0 } else { 0.0 };
        ratio_as_int = Some(i64::from(*enabled));
    }
    if let Some(v) = body.get("name").filter(|v| !v.is_null()) {
        let Value::String(new) = v else {
            return Err(invalid("name", "string_type", "Input should be a valid string", Some(v)));
        };
        bank.name = BankName::parse(new).map_err(|e| bad(e.0))?.as_str().to_owned();
    }
    if !match_store::update_bank(state.db(), &bank).await? {
        return Err(fail(StatusCode::FORBIDDEN, "Bank name already exists"));
    }
    sync(&state).await?;
    let mut out = bank_json(&bank);
    if let Some(n) = ratio_as_int {
        // HMA answers the int it stored from `enabled` (1 or 0).
        out["matching_enabled_ratio"] = json!(n);
    }
    ok(out)
}

async fn delete_bank(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    if let Some(bank) = match_store::bank(state.db(), &name).await? {
        match_store::delete_bank(state.db(), bank.id).await?;
        sync(&state).await?;
    }
    ok(json!({ "message": "Done" }))
}

/// Parses `{type: hash}` pairs into normalised signals with HMA's errors.
fn signals_of(state: &AppState, pairs: &serde_json::Map<String, Value>) -> Result<Vec<(SignalType, String)>, HmaError> {
    let served = state.matching().read().signal_types().map(|(s, _)| s).collect::<Vec<_>>();
    let mut out = Vec::new();
    for (name, value) in pairs {
        let signal = served
            .iter()
            .copied()
            .find(|s| s.name() == name)
            .ok_or_else(|| bad(format!("No such signal type {name}")))?;
        let Value::String(text) = value else {
            return Err(bad(format!("Invalid {name} signal: expected string or bytes-like object")));
        };
        let (_, normalised) = parse_signal(signal, text).map_err(|e| bad(format!("Invalid {name} signal: {e}")))?;
        out.push((signal, normalised));
    }
    if out.is_empty() {
        return Err(bad("No signals given"));
    }
    Ok(out)
}

async fn add_signals(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    let bank = bank_or_404(&state, &name).await?;
    let mut body = json_object(&headers, &body)?;
    let note = note_of(body.remove("note").as_ref())?;
    let labels = labels_of(body.remove("labels"))?;
    let signals = signals_of(&state, &body)?;
    let new = NewContent { note: note.as_deref(), metadata: None, labels: &labels };
    let id = match_store::add_content(state.db(), bank.id, &signals, &new, None).await?;
    sync(&state).await?;
    let signals: serde_json::Map<String, Value> =
        signals.into_iter().map(|(s, text)| (s.name().to_owned(), Value::String(text))).collect();
    ok(json!({ "id": id, "signals": signals }))
}

/// Brings the index up to the change log after a write, so the change is
/// matched before the request returns.
async fn sync(state: &AppState) -> Result<(), HmaError> {
    state.matching().catch_up(state.db()).await?;
    Ok(())
}

/// What a `POST /c/bank/<name>/content` request carried.
struct ContentRequest {
    metadata: Option<Value>,
    note: Option<Value>,
    labels: Option<Value>,
    upload: Option<Upload>,
}

/// Reads a content request: a JSON body (`metadata`, `note`, the media by
/// `url=`), or multipart (one file part, `metadata` as JSON text, `note`).
async fn content_request(state: &AppState, request: axum::extract::Request) -> Result<ContentRequest, HmaError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if is_multipart {
        let upload = read_upload(state, request).await?;
        let mut form = upload.form.clone();
        let metadata = match form.remove("metadata") {
            None => None,
            Some(text) => {
                Some(serde_json::from_str::<Value>(&text).map_err(|_| bad("metadata form field must be valid JSON"))?)
            }
        };
        let note = form.remove("note").map(Value::String);
        // A JSON list, or comma-separated.
        let labels = form.remove("labels").map(|text| {
            serde_json::from_str::<Value>(&text).ok().filter(Value::is_array).unwrap_or_else(|| {
                Value::from(text.split(',').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>())
            })
        });
        return Ok(ContentRequest { metadata, note, labels, upload: Some(upload) });
    }
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX).await.map_err(body_error)?;
    let mut out = ContentRequest { metadata: None, note: None, labels: None, upload: None };
    if let Ok(mut object) = json_object(&headers, &body) {
        out.metadata = object.remove("metadata");
        out.note = object.remove("note");
        out.labels = object.remove("labels");
    }
    Ok(out)
}

/// HMA's `BankedContentMetadata` (extra keys forbidden; `collab` dropped;
/// `json_data` an alias of `json`), stored without its null keys.
fn metadata_of(v: Option<Value>) -> Result<Option<Value>, HmaError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(None) };
    let Value::Object(mut m) = v else { return Err(bad("metadata should be a json object")) };
    m.remove("collab");
    if let Some(json) = m.remove("json_data") {
        m.entry("json").or_insert(json);
    }
    let mut out = serde_json::Map::new();
    for (key, value) in m {
        let ok = match key.as_str() {
            "content_id" | "content_uri" => value.is_string() || value.is_null(),
            "json" => value.is_object() || value.is_null(),
            _ => return Err(bad(format!("Invalid metadata: {key}: Extra inputs are not permitted"))),
        };
        if !ok {
            let want = if key == "json" { "a valid dictionary" } else { "a valid string" };
            return Err(bad(format!("Invalid metadata: {key}: Input should be {want}")));
        }
        if !value.is_null() {
            out.insert(key, value);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

async fn add_content(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    request: axum::extract::Request,
) -> Reply {
    authorize(&state, request.headers(), Scope::Curate).await?;
    let bank = bank_or_404(&state, &name).await?;
    let request = content_request(&state, request).await?;
    let metadata = metadata_of(request.metadata)?;
    let note = note_of(request.note.as_ref())?;
    let labels = labels_of(request.labels)?;
    let hashed = if q.get("url").is_some_and(|u| !u.is_empty()) {
        hash_url_of(&state, &q).await?
    } else if let Some(upload) = request.upload {
        hash_upload_of(&state, &upload, q.get("types").map(String::as_str)).await?
    } else {
        return Err(bad("Neither `url` nor multipart file upload was received"));
    };
    let pairs: serde_json::Map<String, Value> =
        hashed.into_iter().map(|(s, text)| (s.name().to_owned(), Value::String(text))).collect();
    let signals = signals_of(&state, &pairs)?;
    let new = NewContent { note: note.as_deref(), metadata: metadata.as_ref(), labels: &labels };
    let id = match_store::add_content(state.db(), bank.id, &signals, &new, None).await?;
    sync(&state).await?;
    let signals: serde_json::Map<String, Value> =
        signals.into_iter().map(|(s, text)| (s.name().to_owned(), Value::String(text))).collect();
    ok(json!({ "id": id, "signals": signals }))
}

/// frankly's `labels` on content: a list of strings (see
/// [`frankly_match::check_labels`]).
fn labels_of(v: Option<Value>) -> Result<Vec<String>, HmaError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Value::Array(items) = v else { return Err(bad("labels should be a list of strings")) };
    let labels = items
        .into_iter()
        .map(|l| match l {
            Value::String(s) => Ok(s),
            _ => Err(bad("labels should be a list of strings")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    frankly_match::check_labels(&labels).map_err(|e| bad(format!("Invalid labels: {e}")))
}

fn url_off() -> HmaError {
    fail(
        StatusCode::FORBIDDEN,
        "Fetching media by url is not enabled on this server: upload it (multipart field photo or video) or hash it on your side and POST the signal",
    )
}

/// An uploaded file: its content type (the part's field name), its bytes,
/// and the other (text) form fields.
struct Upload {
    content: String,
    bytes: Bytes,
    form: HashMap<String, String>,
}

fn body_error(e: impl std::error::Error + 'static) -> HmaError {
    use crate::guard::BodyError;
    match BodyError::find(&e) {
        Some(BodyError::TooLarge { .. }) => {
            fail(StatusCode::PAYLOAD_TOO_LARGE, "The data value transmitted exceeds the capacity limit.")
        }
        Some(guarded) => guarded.refusal().into(),
        None => bad(format!("the request body could not be read: {e}")),
    }
}

/// Reads HMA's multipart upload: exactly one file part (a part with a file
/// name), named by its content type; text parts are form fields. The body
/// is bounded by the guard ([`crate::guard::body_limit`]).
async fn read_upload(state: &AppState, request: axum::extract::Request) -> Result<Upload, HmaError> {
    use axum::extract::FromRequest;
    let mut multipart = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|_| bad("Missing multipart/form-data file upload"))?;
    let mut file: Option<(String, Bytes)> = None;
    let mut form = HashMap::new();
    while let Some(field) = multipart.next_field().await.map_err(body_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if field.file_name().is_some() {
            if file.is_some() {
                return Err(bad("Only one file allowed per request"));
            }
            file = Some((name, field.bytes().await.map_err(body_error)?));
        } else {
            let text = field.text().await.map_err(body_error)?;
            form.entry(name).or_insert(text);
        }
    }
    let (content, bytes) = file.ok_or_else(|| bad("Missing multipart/form-data file upload"))?;
    Ok(Upload { content, bytes, form })
}

/// Hashes an upload as HMA's hasher does, at most `hash_concurrency` at
/// once (503 `busy` past a short wait), off the async threads.
async fn hash_upload_of(
    state: &AppState,
    upload: &Upload,
    types: Option<&str>,
) -> Result<Vec<(SignalType, String)>, HmaError> {
    let slot = crate::guard::slot(&state.inner.hash_slots, "too many uploads are being hashed").await?;
    let content = ContentType::parse(&upload.content).map_err(|e| bad(e.to_string()))?;
    Ok(hash_bytes(state, slot, content, upload.bytes.clone(), types).await?)
}

/// Fetches `url=` (when `url_fetch_hosts` allows it: [`crate::fetch`]) and
/// hashes it as HMA does, its content type from `content_type` or else from
/// the response's `Content-Type`. A fetch holds a hashing slot from its
/// first byte to its hash, so fetches are bounded with hashing.
async fn hash_url_of(state: &AppState, q: &HashMap<String, String>) -> Result<Vec<(SignalType, String)>, HmaError> {
    if !state.fetcher().enabled() {
        return Err(url_off());
    }
    let url = q.get("url").map(String::as_str).unwrap_or_default();
    let slot = crate::guard::slot(&state.inner.hash_slots, "too many uploads are being hashed").await?;
    let fetched = state.fetcher().fetch(url).await?;
    let content = match q.get("content_type").filter(|c| !c.is_empty()) {
        Some(c) => c.clone(),
        None if fetched.content_type.to_ascii_lowercase().starts_with("image") => "photo".to_owned(),
        None if fetched.content_type.to_ascii_lowercase().starts_with("video") => "video".to_owned(),
        None => {
            return Err(bad(format!(
                "unsupported url ContentType: '{}', if you know the expected type, provide it with the content_type \
                 query param",
                fetched.content_type
            )));
        }
    };
    let content = ContentType::parse(&content).map_err(|e| bad(e.to_string()))?;
    Ok(hash_bytes(state, slot, content, fetched.bytes, q.get("types").map(String::as_str)).await?)
}

/// Hashes media of content type `content` as HMA's hasher does, in the
/// hashing `slot` it was given, off the async threads (uploads, `url=`,
/// and a moderator's "Add to bank").
pub(crate) async fn hash_bytes(
    state: &AppState,
    slot: tokio::sync::OwnedSemaphorePermit,
    content: ContentType,
    bytes: Bytes,
    types: Option<&str>,
) -> Result<Vec<(SignalType, String)>, ServerError> {
    let invalid = |m: String| ServerError::refused(StatusCode::BAD_REQUEST, "invalid", m);
    let served: Vec<SignalType> = state.matching().read().signal_types().map(|(s, _)| s).collect();
    let signals = select_signal_types(content, &served, types).map_err(|e| invalid(e.to_string()))?;
    let decode = hash_decode_options(state.config().max_decode_pixels);
    let hashed = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        hash_content(content, &bytes, &signals, &decode)
    })
    .await
    .map_err(|e| ServerError::Internal(format!("hashing panicked: {e}")))?;
    hashed.map_err(|e| invalid(e.to_string()))
}

/// The decoder limits for uploads: `max_decode_pixels` a frame, and the
/// decoder's memory within 8 bytes a pixel of it.
fn hash_decode_options(max_decode_pixels: u64) -> frankly_hash::DecodeOptions {
    frankly_hash::DecodeOptions {
        limits: frankly_hash::DecodeLimits {
            max_pixels: max_decode_pixels,
            max_alloc: max_decode_pixels.saturating_mul(8),
            max_file_bytes: MAX_UPLOAD_BYTES as u64,
            ..frankly_hash::DecodeLimits::default()
        },
        ..frankly_hash::DecodeOptions::default()
    }
}

fn content_id(text: &str) -> Result<i64, HmaError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0 && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("content '{text}' not found")))
}

async fn show_content(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    bank_or_404(&state, &name).await?;
    let id = content_id(&id)?;
    let row = match_store::content(state.db(), id)
        .await?
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("content '{id}' not found")))?;
    let owner = match_store::banks(state.db()).await?.into_iter().find(|b| b.id == row.bank_id);
    let flag = |key: &str, default: bool| q.get(key).map_or(default, |v| v.eq_ignore_ascii_case("true"));
    let mut out = json!({
        "id": row.id,
        "disable_until_ts": row.disable_until_ts,
        "original_media_uri": null,
        "bank": owner.as_ref().map(bank_json),
    });
    if flag("include_signals", false) && !row.signals.is_empty() {
        let signals: serde_json::Map<String, Value> =
            row.signals.iter().map(|(s, t)| (s.name().to_owned(), Value::String(t.clone()))).collect();
        out["signals"] = Value::Object(signals);
    }
    if flag("include_metadata", true)
        && let Some(Value::Object(m)) = &row.metadata
    {
        let field = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
        out["metadata"] = json!({
            "collab": null,
            "content_id": field("content_id"),
            "content_uri": field("content_uri"),
            "json": field("json"),
        });
    }
    if let Some(note) = &row.note {
        out["note"] = Value::String(note.clone());
    }
    if !row.labels.is_empty() {
        out["labels"] = Value::from(row.labels.clone());
    }
    ok(out)
}

async fn update_content(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    bank_or_404(&state, &name).await?;
    let id = content_id(&id)?;
    let body = json_object(&headers, &body)?;
    let row = match_store::content(state.db(), id)
        .await?
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("content '{id}' not found")))?;
    let mut ts = row.disable_until_ts;
    if let Some(v) = body.get("disable_until_ts") {
        ts = match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
            Value::String(s) => s.trim().parse().ok(),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
        .ok_or_else(|| bad(format!("Invalid int: {v}")))?;
        if ts < 0 {
            return Err(bad("disable_until_ts must be a non-negative integer"));
        }
        if ts > now_s() + MAX_DISABLE_AHEAD_SECS {
            return Err(bad("disable_until_ts must be less than 5 years in the future"));
        }
    }
    let note = if body.contains_key("note") { note_of(body.get("note"))? } else { row.note.clone() };
    match_store::update_content(state.db(), &row, ts, note.as_deref(), now_s()).await?;
    sync(&state).await?;
    let owner = match_store::banks(state.db()).await?.into_iter().find(|b| b.id == row.bank_id);
    ok(json!({
        "bank": owner.as_ref().map(bank_json),
        "collab_metadata": {},
        "disable_until_ts": ts,
        "id": id,
        "note": note,
        "original_media_uri": null,
        "user_metadata": row.metadata,
    }))
}

async fn delete_content(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    bank_or_404(&state, &name).await?;
    let id = content_id(&id)?;
    let deleted = match_store::delete_content(state.db(), id).await?;
    sync(&state).await?;
    ok(json!({ "deleted": deleted }))
}

async fn signal_types(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    let served: Vec<Value> = state
        .matching()
        .read()
        .signal_types()
        .map(|(s, _)| json!({ "enabled_ratio": 1.0, "name": s.name() }))
        .collect();
    ok(Value::Array(served))
}

async fn content_types(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    authorize(&state, &headers, Scope::Curate).await?;
    ok(json!([{ "enabled": true, "name": "photo" }, { "enabled": true, "name": "video" }]))
}

async fn hash_url(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    authorize(&state, &headers, Scope::Hash).await?;
    if !q.contains_key("url") {
        return Err(invalid("url", "missing", "Field required", None));
    }
    ok(hashes_json(&hash_url_of(&state, &q).await?))
}

fn hashes_json(hashed: &[(SignalType, String)]) -> Value {
    Value::Object(hashed.iter().map(|(s, text)| (s.name().to_owned(), Value::String(text.clone()))).collect())
}

async fn hash_upload(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    request: axum::extract::Request,
) -> Reply {
    authorize(&state, request.headers(), Scope::Hash).await?;
    let upload = read_upload(&state, request).await?;
    ok(hashes_json(&hash_upload_of(&state, &upload, q.get("types").map(String::as_str)).await?))
}

async fn lookup_upload(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    request: axum::extract::Request,
) -> Reply {
    authorize(&state, request.headers(), Scope::Match).await?;
    let upload = read_upload(&state, request).await?;
    let hashed = hash_upload_of(&state, &upload, q.get("types").map(String::as_str)).await?;
    ok(Value::Object(lookup_hashed(&state, &q, hashed, true).await?))
}

/// The lookups of media hashed on the server (`POST /m/lookup`, and `GET
/// /m/lookup?url=`), by signal type: POST honours `bypass_coinflip` when
/// it is exactly "true" (HMA).
async fn lookup_hashed(
    state: &AppState,
    q: &HashMap<String, String>,
    hashed: Vec<(SignalType, String)>,
    may_bypass: bool,
) -> Result<serde_json::Map<String, Value>, HmaError> {
    let bypass = may_bypass && q.get("bypass_coinflip").is_some_and(|v| v == "true");
    let coinflip = if bypass { 0.0 } else { coinflip_of(q)? };
    let options = LookupOptions { banks: banks_filter(q), coinflip, max_distance: max_distance_of(q)?, now: now_s() };
    let mut out = serde_json::Map::new();
    for (signal, text) in hashed {
        // A low-quality photo's "" matches nothing.
        let found = match parse_signal(signal, &text) {
            Ok((words, _)) => matches_json(state, signal, &words, &options, q.contains_key("include_metadata")).await?,
            Err(_) => json!({}),
        };
        out.insert(signal.name().to_owned(), found);
    }
    Ok(out)
}

/// The `banks` filter: comma-separated, not trimmed, empty for none.
fn banks_filter(q: &HashMap<String, String>) -> Option<BTreeSet<String>> {
    q.get("banks").filter(|b| !b.is_empty()).map(|b| b.split(',').map(str::to_owned).collect())
}

/// The signal type and hash of a lookup, with HMA's errors.
fn query_signal(state: &AppState, type_name: &str, text: &str) -> Result<(SignalType, frankly_bank::Words), HmaError> {
    let signal = state
        .matching()
        .read()
        .signal_type(type_name)
        .ok_or_else(|| bad(format!("No such SignalType '{type_name}'")))?;
    let (words, _) = parse_signal(signal, text).map_err(|e| bad(format!("invalid signal: {e}")))?;
    Ok((signal, words))
}

fn distance_text(signal: SignalType, m: &RawMatch) -> String {
    // HMA's `pretty_str`: the distance, or "-" for an exact-match type.
    if signal == SignalType::VideoMd5 { "-".into() } else { m.distance.to_string() }
}

fn lookup_error(e: LookupError) -> HmaError {
    bad(e.to_string())
}

/// HMA's coin flip: `random.Random(seed).random()`, or from entropy.
fn coinflip_of(q: &HashMap<String, String>) -> Result<f64, HmaError> {
    Ok(match q.get("seed") {
        Some(seed) => python_random(seed),
        None => {
            let mut entropy = [0u8; 8];
            getrandom::fill(&mut entropy).map_err(|e| ServerError::Internal(format!("no randomness: {e}")))?;
            frankly_match::entropy_random(entropy)
        }
    })
}

fn max_distance_of(q: &HashMap<String, String>) -> Result<Option<u32>, HmaError> {
    match q.get("max_distance") {
        None => Ok(None),
        Some(v) => Ok(Some(
            v.parse::<u32>().map_err(|_| bad(format!("max_distance must be a non-negative integer, not {v:?}")))?,
        )),
    }
}

/// The matches of one hash by bank, HMA's `{"BANK": [{"bank_content_id",
/// "distance"}]}`; with `metadata`, each match also carries its content's
/// metadata and note (frankly's addition: HMA cannot, ThreatExchange #1681).
async fn matches_json(
    state: &AppState,
    signal: SignalType,
    words: &frankly_bank::Words,
    options: &LookupOptions,
    metadata: bool,
) -> Result<Value, HmaError> {
    let found = state.matching().read().lookup(signal, words, options).map_err(lookup_error)?;
    let mut out = serde_json::Map::new();
    for (bank, matches) in found {
        let mut list = Vec::with_capacity(matches.len());
        for m in &matches {
            let mut one = json!({ "bank_content_id": m.content, "distance": distance_text(signal, m) });
            if metadata && let Some(row) = match_store::content(state.db(), m.content).await? {
                one["metadata"] = row.metadata.unwrap_or(Value::Null);
                one["note"] = row.note.map_or(Value::Null, Value::String);
                one["labels"] = Value::from(row.labels);
            }
            list.push(one);
        }
        out.insert(bank, Value::Array(list));
    }
    Ok(Value::Object(out))
}

async fn lookup(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Reply {
    authorize(&state, &headers, Scope::Match).await?;
    let _admitted = admit(&state)?;
    if q.get("url").is_some_and(|u| !u.is_empty()) {
        let mut by_type = lookup_hashed(&state, &q, hash_url_of(&state, &q).await?, false).await?;
        // With signal_type given too, HMA elides the outer object.
        return match q.get("signal_type").filter(|s| !s.is_empty()) {
            Some(only) => ok(by_type.remove(only).unwrap_or_else(|| json!({}))),
            None => ok(Value::Object(by_type)),
        };
    }
    let (Some(type_name), Some(text)) =
        (q.get("signal_type").filter(|s| !s.is_empty()), q.get("signal").filter(|s| !s.is_empty()))
    else {
        return Err(bad("Either url or both signal and signal_type are required"));
    };
    let (signal, words) = query_signal(&state, type_name, text)?;
    // HMA flips one coin per lookup, from the seed when given; GET never
    // bypasses it (HMA's GET ignores bypass_coinflip).
    let options = LookupOptions {
        banks: banks_filter(&q),
        coinflip: coinflip_of(&q)?,
        max_distance: max_distance_of(&q)?,
        now: now_s(),
    };
    ok(matches_json(&state, signal, &words, &options, q.contains_key("include_metadata")).await?)
}

async fn raw_lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    authorize(&state, &headers, Scope::Match).await?;
    let _admitted = admit(&state)?;
    let field = |k: &str| q.get(k).ok_or_else(|| invalid(k, "missing", "Field required", None));
    let (type_name, text) = (field("signal_type")?, field("signal")?);
    let include_distance = match q.get("include_distance").map(|v| v.to_ascii_lowercase()) {
        None => false,
        Some(v) if ["true", "1", "yes", "on", "t", "y"].contains(&v.as_str()) => true,
        Some(v) if ["false", "0", "no", "off", "f", "n"].contains(&v.as_str()) => false,
        Some(v) => {
            return Err(invalid(
                "include_distance",
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
                Some(&Value::String(v)),
            ));
        }
    };
    let (signal, words) = query_signal(&state, type_name, text)?;
    let found = state.matching().read().raw_lookup(signal, &words, banks_filter(&q).as_ref()).map_err(lookup_error)?;
    let matches: Vec<Value> = if include_distance {
        found.iter().map(|m| json!({ "bank_content_id": m.content, "distance": distance_text(signal, m) })).collect()
    } else {
        found.iter().map(|m| json!(m.content)).collect()
    };
    ok(json!({ "matches": matches }))
}

async fn compare(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    authorize(&state, &headers, Scope::Match).await?;
    let body = json_object(&headers, &body)?;
    let mut out = serde_json::Map::new();
    for (type_name, value) in &body {
        let Value::Array(pair) = value else {
            return Err(bad(format!("Comparison hashes for {type_name} was not a list")));
        };
        if pair.len() != 2 {
            return Err(bad("Comparison hash list length must be exactly 2"));
        }
        let signal = state
            .matching()
            .read()
            .signal_types()
            .find(|(s, _)| s.name() == type_name)
            .ok_or_else(|| bad(format!("No such SignalType '{type_name}'")))?;
        let parse = |v: &Value| match v {
            Value::String(t) => parse_signal(signal.0, t).map(|(w, _)| w),
            _ => Err("expected a string".to_owned()),
        };
        let (a, b) = (parse(&pair[0]), parse(&pair[1]));
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Err(bad(format!("Invalid {type_name} hash: {e}"))),
        };
        let d = frankly_bank::index::distance(&a, &b);
        out.insert(type_name.clone(), json!([d <= signal.1, { "distance": d }]));
    }
    ok(Value::Object(out))
}

async fn index_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    authorize(&state, &headers, Scope::Match).await?;
    let status = state.matching().read().status();
    let mut out = serde_json::Map::new();
    for (signal, s) in status {
        out.insert(signal.name().to_owned(), json!({ "built_to": s.built_to, "present": true, "size": s.size }));
    }
    if let Some(only) = q.get("signal_type") {
        let one = out.remove(only).ok_or_else(|| bad(format!("No such signal type '{only}'")))?;
        return ok(json!({ only.clone(): one }));
    }
    ok(Value::Object(out))
}
