//! The server's one error type: every request path's failure, mapped to
//! Prometheus' JSON error shape, HTTP statuses and gRPC codes, so each
//! client sees it in the form it already understands; and the server's
//! own setup failures ([`Kind::Config`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What kind of failure, named after Prometheus' `errorType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or refers to something invalid (400).
    BadData,
    /// The query failed while evaluating (422).
    Execution,
    /// The query hit a query limit (422 `execution` as Prometheus, so HTTP
    /// clients do not retry it; RESOURCE_EXHAUSTED over gRPC).
    QueryLimit,
    /// The query timed out (503, as Prometheus).
    Timeout,
    /// The server is at its concurrency limit (429 / RESOURCE_EXHAUSTED).
    TooManyRequests,
    /// The body is larger than allowed (413).
    TooLarge,
    /// The content type is not one the endpoint reads (415).
    UnsupportedMedia,
    /// No or a wrong bearer token (401).
    Unauthorized,
    /// Unknown path or object (404).
    NotFound,
    /// The storage engine failed (500).
    Internal,
    /// The database cannot take writes right now (503).
    Unavailable,
    /// The server's own setup is wrong: a bad flag or config file, a TLS
    /// file it cannot read, a port it cannot bind. Fails `sextant serve`
    /// at start; never a request's answer.
    Config,
}

impl Kind {
    fn error_type(self) -> &'static str {
        match self {
            Kind::BadData | Kind::TooLarge | Kind::UnsupportedMedia => "bad_data",
            Kind::Execution | Kind::QueryLimit => "execution",
            Kind::Timeout => "timeout",
            Kind::TooManyRequests => "too_many_requests",
            Kind::Unauthorized => "unauthorized",
            Kind::NotFound => "not_found",
            Kind::Internal | Kind::Config => "internal",
            Kind::Unavailable => "unavailable",
        }
    }

    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Kind::BadData => StatusCode::BAD_REQUEST,
            Kind::Execution | Kind::QueryLimit => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Timeout | Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Internal | Kind::Config => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(self) -> tonic::Code {
        match self {
            Kind::BadData | Kind::UnsupportedMedia => tonic::Code::InvalidArgument,
            Kind::Execution => tonic::Code::FailedPrecondition,
            Kind::Timeout => tonic::Code::DeadlineExceeded,
            Kind::TooManyRequests | Kind::TooLarge | Kind::QueryLimit => {
                tonic::Code::ResourceExhausted
            }
            Kind::Unauthorized => tonic::Code::Unauthenticated,
            Kind::NotFound => tonic::Code::NotFound,
            Kind::Internal | Kind::Config => tonic::Code::Internal,
            Kind::Unavailable => tonic::Code::Unavailable,
        }
    }
}

/// A failed request: what kind and a message saying what to change.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The kind, which decides status and code.
    pub kind: Kind,
    /// The message shown to the client.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// A 400 with `message`.
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::new(Kind::BadData, message)
    }

    /// A setup error of the server itself (see [`Kind::Config`]).
    pub fn config(message: impl Into<String>) -> Self {
        ApiError::new(Kind::Config, message)
    }
}

impl From<sextant_storage::Error> for ApiError {
    fn from(e: sextant_storage::Error) -> Self {
        use sextant_storage::Error as E;
        let kind = match &e {
            E::InvalidLabels(_)
            | E::InvalidRecord(_)
            | E::InvalidHistogram { .. }
            | E::Matcher(_)
            | E::OutOfOrder { .. }
            | E::TooManyNewSeries { .. } => Kind::BadData,
            E::TooManySeries { .. } => Kind::TooManyRequests,
            E::Poisoned(_) | E::Closed => Kind::Unavailable,
            _ => Kind::Internal,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<sextant_query::Error> for ApiError {
    fn from(e: sextant_query::Error) -> Self {
        use sextant_query::Error as E;
        match e {
            E::Parse(p) => ApiError::bad(p.to_string()),
            E::Storage(s) => s.into(),
            E::Eval(m) => ApiError::new(Kind::Execution, m),
            E::OutOfRange(m) => ApiError::bad(m),
            // Prometheus: a limit is an execution error (422, not retried);
            // only the timeout is 503.
            E::Limit(m) => ApiError::new(Kind::QueryLimit, m),
            E::Timeout(m) => ApiError::new(Kind::Timeout, m),
            other => ApiError::new(Kind::Internal, other.to_string()),
        }
    }
}

impl From<sextant_query::ParseError> for ApiError {
    fn from(e: sextant_query::ParseError) -> Self {
        ApiError::bad(e.to_string())
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        tonic::Status::new(e.kind.code(), e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Prometheus' key order, for clients that compare text.
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":\"{}\",\"error\":{}}}",
            self.kind.error_type(),
            serde_json::to_string(&self.message).unwrap_or_else(|_| "\"\"".into())
        );
        (
            self.kind.status(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// Result of a request handler.
pub type ApiResult<T> = Result<T, ApiError>;
