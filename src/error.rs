//! The one error type every layer returns. The HTTP edge (`api::problem`) turns it into
//! `application/problem+json`; nothing below the edge knows about status codes.

use serde::Serialize;
use serde_json::Value;

/// A problem with one field (or one path inside a definition), as listed in a 400, 409 or 422.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// The field name, or a dotted path into a definition (`schema.properties.budget.x-kind`).
    pub field: String,
    pub message: String,
    /// How many records are in the way (schema changes refused by the data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// A few of the offending values or records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Value>,
    /// Where in an expression the problem is (1-based character position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// Where in a script the problem is (1-based line and column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
            count: None,
            examples: Vec::new(),
            position: None,
            line: None,
            column: None,
        }
    }

    pub fn at(mut self, position: usize) -> Self {
        self.position = Some(position);
        self
    }

    pub fn at_line(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn with_count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    pub fn with_examples(mut self, examples: Vec<Value>) -> Self {
        self.examples = examples;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist (or the caller may not know it exists).
    #[error("{0}")]
    NotFound(String),
    /// The request itself is malformed: bad JSON, bad query parameter, bad filter.
    #[error("{message}")]
    BadRequest {
        message: String,
        errors: Vec<FieldError>,
    },
    /// The request is well-formed but its content is invalid; every failing field is listed.
    #[error("{message}")]
    Invalid {
        message: String,
        errors: Vec<FieldError>,
    },
    /// The request conflicts with the current state: a unique value taken, data that blocks a
    /// schema change, a definition changed by someone else meanwhile.
    #[error("{message}")]
    Conflict {
        message: String,
        errors: Vec<FieldError>,
    },
    /// No valid session or token.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Too many attempts; try again later.
    #[error("{0}")]
    TooManyRequests(String),
    /// An `If-Match` (or body `version`) precondition did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A database failure the caller cannot fix; logged in full, never shown.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A bug or an impossible state; logged in full, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest {
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// A 400 about one query parameter.
    pub fn bad_parameter(parameter: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::BadRequest {
            message: format!("{parameter}: {message}"),
            errors: vec![FieldError::new(parameter, message)],
        }
    }

    /// A 400 for an expression (filter) that does not parse or check, with its position.
    pub fn bad_expression(parameter: &str, error: &crate::expr::ExprError) -> Self {
        Error::BadRequest {
            message: format!("{parameter}: {error}"),
            errors: vec![FieldError::new(parameter, error.message.clone()).at(error.position)],
        }
    }

    pub fn invalid(message: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Error::Invalid {
            message: message.into(),
            errors,
        }
    }

    /// A 422 about a single field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        Error::Invalid {
            message: error.message.clone(),
            errors: vec![error],
        }
    }

    pub fn conflict(message: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Error::Conflict {
            message: message.into(),
            errors,
        }
    }

    /// Whether the server is at fault (the cause is logged, never shown).
    pub fn is_server_error(&self) -> bool {
        matches!(
            self,
            Error::Database(_) | Error::Migration(_) | Error::Internal(_)
        )
    }

    /// What may be shown to whoever made the request: a client error's message as it is; for
    /// a server error, a reference to the log line that records its cause.
    pub fn public_message(&self) -> String {
        if self.is_server_error() {
            let reference = uuid::Uuid::now_v7().simple().to_string();
            tracing::error!(reference, error = %self, "request failed");
            format!("An unexpected error occurred. Reference: {reference}")
        } else {
            self.to_string()
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        // Our own JSON (stored definitions) failed to round-trip: a bug, not a client error.
        Error::Internal(format!("json: {error}"))
    }
}
