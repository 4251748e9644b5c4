use thiserror::Error;

/// What the controller reports.
#[derive(Debug, Error)]
pub enum ControlError {
    /// A stored resource the platform cannot run as it is.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("{0}")]
    Api(String),
}

impl From<api::Status> for ControlError {
    fn from(s: api::Status) -> Self {
        ControlError::Api(s.message.clone())
    }
}
