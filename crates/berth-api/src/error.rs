//! The API's error: an HTTP status and Docker's body (`{"message": "…"}`), made from the engine's
//! typed errors (not found, conflict, not running) or from what was wrong with the request.

use berth_engine::record::RecordError;
use berth_engine::EngineError;
use berth_image::store::StoreError;
use hyper::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong: a bad parameter, malformed JSON, an unsupported option.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request headers are larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("{0}")]
    NotImplemented(String),
    /// Docker's 503 for what this node is not (a swarm manager): clients tell it from a
    /// missing endpoint, and `swarm leave --force` takes it as done.
    #[error("{0}")]
    Unavailable(String),
    /// The engine failed; its status comes from what kind of failure it is.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Something of the service itself (a worker lost, a socket).
    #[error("{0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad(m: impl Into<String>) -> ApiError {
        ApiError::BadRequest(m.into())
    }

    /// An engine failure told in a sentence about what the client sent (a name, a path, a
    /// tarball, `ps` options): Docker's 400. Typed failures keep their own status.
    pub fn refused(e: EngineError) -> ApiError {
        if about_the_input(&e) {
            return ApiError::BadRequest(e.to_string());
        }
        e.into()
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Engine(e) => engine_status(e),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A sentence, or a tarball the archive reader refused, under any context.
fn about_the_input(e: &EngineError) -> bool {
    match e {
        EngineError::Msg(_) | EngineError::Archive(_) => true,
        EngineError::Context { source, .. } => about_the_input(source),
        _ => false,
    }
}

/// Docker's status for an engine failure: 404 for a missing object, 409 for a state or name
/// conflict, 400 for options the spec cannot be made from, 500 otherwise.
fn engine_status(e: &EngineError) -> StatusCode {
    if e.is_not_found() {
        return StatusCode::NOT_FOUND;
    }
    match e {
        EngineError::Record(RecordError::NameInUse(_)) => StatusCode::CONFLICT,
        EngineError::Record(RecordError::BadName(_) | RecordError::Ambiguous(_)) => {
            StatusCode::BAD_REQUEST
        }
        EngineError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
        EngineError::NotRunning(_) => StatusCode::CONFLICT,
        EngineError::Spec(_) => StatusCode::BAD_REQUEST,
        // The user the client named: out of range, or not in the image.
        EngineError::User(_) => StatusCode::BAD_REQUEST,
        // A network's name, subnet or gateway as the client asked for them.
        EngineError::Network(berth_net::NetworkError::Config(_))
        | EngineError::Network(berth_net::NetworkError::Ambiguous(_)) => StatusCode::BAD_REQUEST,
        EngineError::Network(berth_net::NetworkError::Exists(_)) => StatusCode::CONFLICT,
        // Docker's 403 for a network with endpoints or a predefined one.
        EngineError::Network(
            berth_net::NetworkError::InUse { .. } | berth_net::NetworkError::Default(_),
        ) => StatusCode::FORBIDDEN,
        EngineError::Context { source, .. } => engine_status(source),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
