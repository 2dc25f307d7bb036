//! The pipeline's errors, told apart the way its callers must tell them apart: a request that
//! cannot be answered as asked, something that does not exist, a conflict with what is stored,
//! a store held by another process, or an internal failure. The API maps each kind to its status
//! and error code in one place (`http`); the CLI prints the message.
//!
//! Stages raise the kind where they know it (`Error::invalid(…)`, a `StoreError`); everything
//! else is internal. Inside the pipeline `anyhow` carries errors with context, and the boundary
//! functions the server calls return [`Result`], classifying on the way out.

use crate::store::StoreError;

/// A pipeline failure with its kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a parameter, field or file the caller can fix.
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The store is held by another process.
    #[error("{0}")]
    Busy(String),
    /// No valid credentials (a wrong password, an expired or revoked token).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials whose role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Something that existed and has ended (an expired share link).
    #[error("{0}")]
    Gone(String),
    /// Anything else: a bug or the machine, never the caller's input.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidInput(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::NotFound(message.into())
    }

    /// The same failure again, for a cached outcome: same kind and message.
    pub fn replay(&self) -> Error {
        match self {
            Error::InvalidInput(m) => Error::InvalidInput(m.clone()),
            Error::NotFound(m) => Error::NotFound(m.clone()),
            Error::Conflict(m) => Error::Conflict(m.clone()),
            Error::Busy(m) => Error::Busy(m.clone()),
            Error::Unauthorized(m) => Error::Unauthorized(m.clone()),
            Error::Forbidden(m) => Error::Forbidden(m.clone()),
            Error::Gone(m) => Error::Gone(m.clone()),
            Error::Internal(e) => Error::Internal(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        let message = e.to_string();
        match e {
            StoreError::NotFound(_) => Error::NotFound(message),
            StoreError::Invalid(_) => Error::InvalidInput(message),
            StoreError::Conflict(_) => Error::Conflict(message),
            StoreError::Locked { .. } => Error::Busy(message),
            other => Error::Internal(other.into()),
        }
    }
}

/// Errors that crossed `anyhow` keep the kind they were raised with: a typed [`Error`] or a
/// [`StoreError`] inside (under any context) decides it, and the message is the outermost one,
/// as the caller reads it. Everything else is internal.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        let message = e.to_string();
        if let Some(typed) = e.downcast_ref::<Error>() {
            return match typed {
                Error::InvalidInput(_) => Error::InvalidInput(message),
                Error::NotFound(_) => Error::NotFound(message),
                Error::Conflict(_) => Error::Conflict(message),
                Error::Busy(_) => Error::Busy(message),
                Error::Unauthorized(_) => Error::Unauthorized(message),
                Error::Forbidden(_) => Error::Forbidden(message),
                Error::Gone(_) => Error::Gone(message),
                Error::Internal(_) => Error::Internal(e),
            };
        }
        match e.downcast_ref::<StoreError>() {
            Some(StoreError::NotFound(_)) => Error::NotFound(message),
            Some(StoreError::Invalid(_)) => Error::InvalidInput(message),
            Some(StoreError::Conflict(_)) => Error::Conflict(message),
            Some(StoreError::Locked { .. }) => Error::Busy(message),
            _ => Error::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn kinds_survive_anyhow_and_context() {
        let typed: anyhow::Error = Error::invalid("`limit`: \"ten\" is not a count").into();
        assert!(matches!(Error::from(typed), Error::InvalidInput(m) if m.contains("`limit`")));
        let missing = Err::<(), _>(StoreError::NotFound("no model named `x`".into())).context("loading the study");
        assert!(matches!(Error::from(missing.unwrap_err()), Error::NotFound(m) if m == "loading the study"));
        let busy: anyhow::Error = StoreError::Locked { path: "s".into(), detail: "pid 1".into() }.into();
        assert!(matches!(Error::from(busy), Error::Busy(_)));
        // Whatever carries no kind is internal, never bad input.
        let io: anyhow::Error = std::io::Error::other("disk full").into();
        assert!(matches!(Error::from(io), Error::Internal(_)));
        assert!(matches!(Error::from(anyhow::anyhow!("arrow column of the wrong type")), Error::Internal(_)));
    }
}
