//! The store's errors. Each names the kind and resource it is about.

use std::path::PathBuf;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name} not found")]
    NotFound { kind: String, name: String },

    #[error("{kind} {name} already exists (revision {current})")]
    AlreadyExists {
        kind: String,
        name: String,
        current: u64,
    },

    /// A `Precondition::Revision` did not match: someone else wrote the record first.
    #[error("{kind} {name} was changed concurrently: expected revision {expected}, current revision is {current}")]
    Conflict {
        kind: String,
        name: String,
        expected: u64,
        current: u64,
    },

    /// `changes_since(requested)` cannot be answered: changes up to `compacted` were pruned.
    #[error(
        "changes after revision {requested} are no longer all in the change log (pruned up to revision {compacted}); list the resources again"
    )]
    Compacted { requested: u64, compacted: u64 },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The file is not a homerun store, is from a newer homerun, or holds damaged data.
    #[error("corrupt store: {0}")]
    Corrupt(String),

    #[error("{context}: {source}")]
    Sqlite {
        context: String,
        #[source]
        source: rusqlite::Error,
    },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether a retry after re-reading may succeed (a lost optimistic-concurrency race).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Adds context to rusqlite results.
pub(crate) trait SqlContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| StoreError::Sqlite {
            context: context(),
            source,
        })
    }
}
