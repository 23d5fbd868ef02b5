//! What stands between a hostile client and the handlers: connection
//! limits and timeouts, and a bound on the memory unfinished request bodies
//! may hold.
//!
//! - **Connections.** At most `max_http_connections` at once (kept below the
//!   process's file-descriptor limit); a connection over the cap is closed at
//!   once. Request headers must arrive within `header_timeout_seconds`, and
//!   the same timer closes a keep-alive connection idle for that long
//!   (hyper's `header_read_timeout` starts when the connection waits for a
//!   request head).
//! - **Bodies.** Each route has a body limit ([`body_limit`]). A declared
//!   `Content-Length` over it is refused with 413 before a byte is read. A
//!   body must arrive whole within `body_timeout_seconds` (a total, not a
//!   per-read timer, so a client sending one byte a second is cut off). While
//!   a body is read it holds its declared length (or the route's limit, if
//!   chunked) from one budget of `max_inflight_body_bytes` shared by every
//!   connection; a body that cannot get its share within
//!   [`BUDGET_WAIT`] is refused with 503. The share is taken on the first
//!   read, which happens after the route's credential was checked, so only
//!   authenticated clients can hold it.
//!
//! Errors are the API's JSON (`{"error": "too_large" | "timeout" | "busy", ...}`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::error::AppError;
use crate::{AppState, ServerError};

/// Largest body of a request that is not a report or a message: JSON
/// requests and the web UI's forms.
pub const MAX_SMALL_BODY_BYTES: usize = 256 << 10;
/// How long a body waits for its share of the in-flight budget.
pub const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// The body limit of a route.
pub fn body_limit(method: &Method, path: &str) -> usize {
    match (method, path) {
        (&Method::POST, "/v1/reports") => frankly_report::MAX_ENVELOPE_BYTES,
        (&Method::POST, "/v1/messages") => frankly_api::MAX_SEND_REQUEST_BYTES,
        (&Method::POST, "/h/hash" | "/m/lookup") => crate::hma::MAX_UPLOAD_BYTES,
        (&Method::POST, path)
            if path
                .strip_prefix("/c/bank/")
                .and_then(|rest| rest.strip_suffix("/content"))
                .is_some_and(|bank| !bank.contains('/')) =>
        {
            crate::hma::MAX_UPLOAD_BYTES
        }
        _ => MAX_SMALL_BODY_BYTES,
    }
}

/// The shared in-flight body budget.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    pub(crate) fn new(total: usize) -> BodyBudget {
        BodyBudget { bytes: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))) }
    }
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    AppError(ServerError::refused(status, code, message)).into_response()
}

/// Middleware on every route: the declared length against the route's
/// limit, then a body that keeps to its limit, deadline and budget.
pub(crate) async fn guard_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = body_limit(req.method(), req.uri().path());
    let declared = match req.headers().get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => return refuse(StatusCode::BAD_REQUEST, "invalid", "Content-Length is not a number".into()),
        },
    };
    if let Some(n) = declared
        && n > limit as u64
    {
        state.metrics().request_refused("too_large");
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is {n} bytes; {} takes at most {limit}", req.uri().path()),
        );
    }
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    // usize fits: n <= limit.
    let reserve = declared.map_or(if chunked { limit } else { 0 }, |n| n as usize);
    let config = state.config();
    let (parts, body) = req.into_parts();
    let guarded = GuardedBody {
        inner: body,
        limit,
        read: 0,
        reserve: u32::try_from(reserve).unwrap_or(u32::MAX),
        budget: Arc::clone(&state.inner.body_budget.bytes),
        acquire: None,
        budget_wait: None,
        permit: None,
        deadline: Box::pin(tokio::time::sleep(Duration::from_secs(config.body_timeout_seconds))),
        timeout_seconds: config.body_timeout_seconds,
    };
    next.run(Request::from_parts(parts, Body::new(guarded))).await
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A request body that keeps to its route's limit, a total deadline and
/// the shared budget.
struct GuardedBody {
    inner: Body,
    limit: usize,
    read: usize,
    reserve: u32,
    budget: Arc<Semaphore>,
    acquire: Option<Acquire>,
    budget_wait: Option<Pin<Box<Sleep>>>,
    permit: Option<OwnedSemaphorePermit>,
    deadline: Pin<Box<Sleep>>,
    timeout_seconds: u64,
}

/// Why a guarded body stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// More bytes than the route takes.
    #[error("the body is over {limit} bytes")]
    TooLarge {
        /// The route's limit.
        limit: usize,
    },
    /// Not whole within the deadline.
    #[error("the body did not arrive within {seconds} s")]
    Timeout {
        /// The deadline.
        seconds: u64,
    },
    /// No share of the in-flight budget.
    #[error("the server is reading too many request bodies; retry shortly")]
    Busy,
    /// The connection failed.
    #[error("reading the body: {0}")]
    Read(String),
}

impl BodyError {
    /// The refusal a handler answers with.
    pub(crate) fn refusal(&self) -> ServerError {
        let (status, code) = match self {
            BodyError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            BodyError::Timeout { .. } => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            BodyError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            BodyError::Read(_) => (StatusCode::BAD_REQUEST, "invalid"),
        };
        ServerError::refused(status, code, self.to_string())
    }

    /// Finds the guard's error inside an extractor's rejection.
    pub(crate) fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyError> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if let Some(b) = err.downcast_ref::<BodyError>() {
                return Some(b);
            }
            cur = err.source();
        }
        None
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyError::Timeout { seconds: this.timeout_seconds })));
        }
        if this.permit.is_none() && this.reserve > 0 {
            let reserve = this.reserve;
            let budget = Arc::clone(&this.budget);
            let acquire = this.acquire.get_or_insert_with(|| Box::pin(budget.acquire_many_owned(reserve)));
            match acquire.as_mut().poll(cx) {
                Poll::Ready(Ok(permit)) => {
                    this.permit = Some(permit);
                    this.acquire = None;
                    this.budget_wait = None;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Some(Err(BodyError::Busy))),
                Poll::Pending => {
                    let wait = this.budget_wait.get_or_insert_with(|| Box::pin(tokio::time::sleep(BUDGET_WAIT)));
                    if wait.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(BodyError::Busy)));
                    }
                    return Poll::Pending;
                }
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len());
                    if this.read > this.limit {
                        return Poll::Ready(Some(Err(BodyError::TooLarge { limit: this.limit })));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e.to_string())))),
            Poll::Ready(None) => {
                // Whole: give the share back now, not when the body is dropped.
                this.permit = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection cap in effect: the configured one, lowered to leave
/// [`RESERVED_FDS`] descriptors for the database, files and logs.
pub fn connection_cap(configured: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match soft.and_then(|n| usize::try_from(n).ok()) {
        Some(fds) => configured.min(fds.saturating_sub(RESERVED_FDS)).max(1),
        None => configured,
    }
}

/// File descriptors kept back from the connection cap.
pub const RESERVED_FDS: usize = 256;

/// Accepts connections until `shutdown`, each served by hyper's HTTP/1 with
/// the header timeout, at most `cap` at once.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: &crate::Config,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let cap = connection_cap(config.max_http_connections);
    let slots = Arc::new(Semaphore::new(cap));
    let header_timeout = Duration::from_secs(config.header_timeout_seconds);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(cap, header_timeout_s = config.header_timeout_seconds, "accepting connections");
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service =
            tower::ServiceExt::map_request(app.clone(), move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                req
            });
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let hyper_service = hyper_util::service::TowerToHyperService::new(service);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    // Wait (bounded) for connections to finish their requests.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(u32::try_from(cap).unwrap_or(u32::MAX))).await;
    Ok(())
}

/// How long shutdown waits for requests in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// One of `slots`, waiting at most [`BUDGET_WAIT`] for it; otherwise a 503
/// `busy` saying `what` is busy. Bounds CPU-heavy work on the blocking pool
/// (opening reports, drawing frame strips) however many requests arrive.
pub(crate) async fn slot(slots: &Arc<Semaphore>, what: &str) -> Result<OwnedSemaphorePermit, ServerError> {
    tokio::time::timeout(BUDGET_WAIT, Arc::clone(slots).acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| ServerError::refused(StatusCode::SERVICE_UNAVAILABLE, "busy", format!("{what}; retry shortly")))
}
