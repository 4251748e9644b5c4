//! homerun's persistent state: desired and observed state of every resource, behind one
//! small trait.
//!
//! - A resource is a JSON document ([`serde_json::Value`]) keyed by a *kind* (`service`,
//!   `revision`, `operation`, `job`, `execution`, `task`, ...: any non-empty word) and its full
//!   resource name (`projects/p/locations/l/services/s`). The store never looks inside the
//!   document, so it does not depend on the API types.
//! - Every write is numbered by one global, monotonically increasing *revision* counter
//!   (etcd's model). A record carries the revision of its last write (`revision`, the etag)
//!   and of its creation (`create_revision`). Writes take a [`Precondition`] (`Any`,
//!   `Absent`, `Exists`, `Revision(n)`): optimistic concurrency, failing with
//!   [`StoreError::Conflict`] (naming the current revision), [`StoreError::AlreadyExists`] or
//!   [`StoreError::NotFound`].
//! - [`Store::transact`] applies several puts, deletes and checks all or nothing, each op
//!   seeing the ones before it; each write gets its own revision.
//! - Every write is also appended to a change log, read with [`Store::changes_since`] by
//!   reconcilers; the log keeps the last [`DEFAULT_CHANGE_LOG_LIMIT`] changes (configurable),
//!   and asking for pruned ones fails with [`StoreError::Compacted`] (list again instead).
//! - [`Store::list`] pages by name; the page token is the last name returned (encoded), so
//!   paging is stable while records are inserted or deleted.
//! - A small key-value *meta* area holds platform settings (bytes), outside revisions.
//!
//! Two implementations: [`SqliteStore`] (embedded SQLite file, WAL, one connection behind a
//! mutex, schema migrations by `user_version`) for the platform, and [`MemStore`] (maps behind
//! a mutex) for tests. Both pass the same test suite. A distributed store (etcd) fits the same
//! trait: its revisions, transactions and watch map one to one.

mod error;
mod mem;
mod sqlite;

pub use error::{Result, StoreError};
pub use mem::MemStore;
pub use sqlite::SqliteStore;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Page size used when a caller asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Larger page sizes are reduced to this.
pub const MAX_PAGE_SIZE: usize = 1000;
/// How many changes the change log keeps unless told otherwise.
pub const DEFAULT_CHANGE_LOG_LIMIT: u64 = 10_000;

/// One stored resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: String,
    pub name: String,
    /// The global revision of the last write of this record (its etag).
    pub revision: u64,
    /// The global revision of the write that created it (changes if deleted and recreated).
    pub create_revision: u64,
    pub doc: Value,
}

/// A page of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// Records in ascending name order.
    pub records: Vec<Record>,
    /// Token for the next page, `None` on the last page.
    pub next_page_token: Option<String>,
}

/// What a write expects of the record's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Precondition {
    /// No expectation (blind write; a delete still needs the record to exist).
    #[default]
    Any,
    /// The record must not exist (create).
    Absent,
    /// The record must exist, whatever its revision.
    Exists,
    /// The record must exist at exactly this revision (compare-and-swap, etag).
    Revision(u64),
}

/// One operation of [`Store::transact`].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Create or replace a record.
    Put {
        kind: String,
        name: String,
        doc: Value,
        expected: Precondition,
    },
    /// Delete a record (which must exist).
    Delete {
        kind: String,
        name: String,
        expected: Precondition,
    },
    /// Only check a precondition, writing nothing (e.g. "the service is still at revision n").
    Check {
        kind: String,
        name: String,
        expected: Precondition,
    },
}

impl Op {
    pub fn put(
        kind: impl Into<String>,
        name: impl Into<String>,
        doc: Value,
        expected: Precondition,
    ) -> Op {
        Op::Put {
            kind: kind.into(),
            name: name.into(),
            doc,
            expected,
        }
    }

    pub fn delete(kind: impl Into<String>, name: impl Into<String>, expected: Precondition) -> Op {
        Op::Delete {
            kind: kind.into(),
            name: name.into(),
            expected,
        }
    }

    pub fn check(kind: impl Into<String>, name: impl Into<String>, expected: Precondition) -> Op {
        Op::Check {
            kind: kind.into(),
            name: name.into(),
            expected,
        }
    }

    /// The op's kind, name and precondition.
    pub fn target(&self) -> (&str, &str, Precondition) {
        match self {
            Op::Put {
                kind,
                name,
                expected,
                ..
            }
            | Op::Delete {
                kind,
                name,
                expected,
            }
            | Op::Check {
                kind,
                name,
                expected,
            } => (kind, name, *expected),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Put,
    Delete,
}

/// One entry of the change log. It names what changed; read the record for its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub revision: u64,
    pub kind: String,
    pub name: String,
    pub op: ChangeOp,
}

/// The persistence interface. Object safe: the platform holds an `Arc<dyn Store>`.
pub trait Store: Send + Sync {
    /// The record, or `None`.
    fn get(&self, kind: &str, name: &str) -> Result<Option<Record>>;

    /// Records of `kind` whose name is below `parent` (`projects/p/locations/l` lists
    /// `projects/p/locations/l/services/a`, not `projects/p/locations/l2/...`; an empty
    /// parent lists all), in name order, after the record named by `page_token`.
    /// `page_size` 0 means [`DEFAULT_PAGE_SIZE`].
    fn list(
        &self,
        kind: &str,
        parent: &str,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page>;

    /// Applies `ops` atomically: either every precondition holds and every op is applied in
    /// order, or nothing is written and the first failure is returned. Returns one revision
    /// per op: the new revision for a put or delete, the current one (0: absent) for a check.
    fn transact(&self, ops: Vec<Op>) -> Result<Vec<u64>>;

    /// The changes after `revision`, oldest first. Fails with [`StoreError::Compacted`] when
    /// some of them were pruned.
    fn changes_since(&self, revision: u64) -> Result<Vec<Change>>;

    /// The latest revision given out (0 for an empty store).
    fn revision(&self) -> Result<u64>;

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Whether the key existed.
    fn delete_meta(&self, key: &str) -> Result<bool>;

    /// Creates or replaces one record; returns its new revision.
    fn put(&self, kind: &str, name: &str, doc: Value, expected: Precondition) -> Result<u64> {
        Ok(self.transact(vec![Op::put(kind, name, doc, expected)])?[0])
    }

    /// Deletes one record; returns the revision of the deletion.
    fn delete(&self, kind: &str, name: &str, expected: Precondition) -> Result<u64> {
        Ok(self.transact(vec![Op::delete(kind, name, expected)])?[0])
    }
}

/// Checks `expected` against the current revision of a record (`None`: absent).
fn check_precondition(
    kind: &str,
    name: &str,
    expected: Precondition,
    current: Option<u64>,
) -> Result<()> {
    let not_found = || StoreError::NotFound {
        kind: kind.to_string(),
        name: name.to_string(),
    };
    match (expected, current) {
        (Precondition::Any, _) => Ok(()),
        (Precondition::Absent, None) => Ok(()),
        (Precondition::Absent, Some(current)) => Err(StoreError::AlreadyExists {
            kind: kind.to_string(),
            name: name.to_string(),
            current,
        }),
        (Precondition::Exists | Precondition::Revision(_), None) => Err(not_found()),
        (Precondition::Exists, Some(_)) => Ok(()),
        (Precondition::Revision(expected), Some(current)) if expected == current => Ok(()),
        (Precondition::Revision(expected), Some(current)) => Err(StoreError::Conflict {
            kind: kind.to_string(),
            name: name.to_string(),
            expected,
            current,
        }),
    }
}

/// Checks an op against the current revision of its record: its precondition, and that a
/// record to delete exists.
pub(crate) fn check_op(op: &Op, current: Option<u64>) -> Result<()> {
    let (kind, name, expected) = op.target();
    check_precondition(kind, name, expected, current)?;
    if matches!(op, Op::Delete { .. }) && current.is_none() {
        return Err(StoreError::NotFound {
            kind: kind.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Checks what an op names before anything is written.
pub(crate) fn validate_op(op: &Op) -> Result<()> {
    let (kind, name, _) = op.target();
    if kind.is_empty() || kind.contains('\0') {
        return Err(StoreError::InvalidArgument(format!(
            "invalid kind {kind:?} for {name:?}"
        )));
    }
    if name.is_empty() || name.contains('\0') {
        return Err(StoreError::InvalidArgument(format!(
            "invalid {kind} name {name:?}"
        )));
    }
    Ok(())
}

/// The prefix every name below `parent` starts with ("" for all).
pub(crate) fn parent_prefix(parent: &str) -> String {
    let parent = parent.trim_end_matches('/');
    if parent.is_empty() {
        String::new()
    } else {
        format!("{parent}/")
    }
}

pub(crate) fn effective_page_size(page_size: usize) -> usize {
    match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

const TOKEN_PREFIX: &str = "n1:";

pub(crate) fn encode_page_token(last_name: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{last_name}"))
}

/// The name after which the page starts (`None`: from the beginning).
pub(crate) fn decode_page_token(token: Option<&str>) -> Result<Option<String>> {
    let token = match token {
        None | Some("") => return Ok(None),
        Some(token) => token,
    };
    let invalid = || StoreError::InvalidArgument(format!("invalid page token {token:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match text.strip_prefix(TOKEN_PREFIX) {
        Some(name) if !name.is_empty() => Ok(Some(name.to_string())),
        _ => Err(invalid()),
    }
}

/// The next page token for a page cut at `page_size` from `fetched` (up to one more record).
pub(crate) fn finish_page(mut records: Vec<Record>, page_size: usize) -> Page {
    let next_page_token = if records.len() > page_size {
        records.truncate(page_size);
        records.last().map(|r| encode_page_token(&r.name))
    } else {
        None
    };
    Page {
        records,
        next_page_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let name = "projects/p/locations/l/services/é-s";
        let token = encode_page_token(name);
        assert_eq!(
            decode_page_token(Some(&token)).unwrap().as_deref(),
            Some(name)
        );
        assert_eq!(decode_page_token(None).unwrap(), None);
        assert_eq!(decode_page_token(Some("")).unwrap(), None);
        for bad in [
            "!!!",
            "bm90LWEtdG9rZW4",
            &URL_SAFE_NO_PAD.encode(TOKEN_PREFIX),
        ] {
            let err = decode_page_token(Some(bad)).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidArgument(_)),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn parent_prefix_is_a_path_prefix() {
        assert_eq!(parent_prefix(""), "");
        assert_eq!(parent_prefix("projects/p"), "projects/p/");
        assert_eq!(parent_prefix("projects/p/"), "projects/p/");
    }
}
