//! An in-memory [`Store`]: ordered maps behind one mutex. For tests, and the reference the
//! SQLite store is checked against.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use crate::{
    check_op, decode_page_token, effective_page_size, finish_page, parent_prefix, validate_op,
    Change, ChangeOp, Op, Page, Record, Result, Store, StoreError, DEFAULT_CHANGE_LOG_LIMIT,
};

#[derive(Debug)]
pub struct MemStore {
    inner: Mutex<Inner>,
    change_log_limit: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// kind → name → record.
    records: BTreeMap<String, BTreeMap<String, Record>>,
    changes: VecDeque<Change>,
    revision: u64,
    /// Changes up to this revision were pruned.
    compacted: u64,
    meta: BTreeMap<String, Vec<u8>>,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new()
    }
}

impl MemStore {
    pub fn new() -> Self {
        MemStore {
            inner: Mutex::new(Inner::default()),
            change_log_limit: DEFAULT_CHANGE_LOG_LIMIT,
        }
    }

    /// Keeps only the last `limit` changes (at least 1).
    pub fn with_change_log_limit(mut self, limit: u64) -> Self {
        self.change_log_limit = limit.max(1);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing that runs under the lock panics midway (errors are undone before
        // returning), so a poisoned lock still guards consistent maps.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn current(&self, kind: &str, name: &str) -> Option<&Record> {
        self.records.get(kind)?.get(name)
    }

    /// Replaces a record (or removes it with `None`), returning the previous one.
    fn set(&mut self, kind: &str, name: &str, record: Option<Record>) -> Option<Record> {
        match record {
            Some(record) => self
                .records
                .entry(kind.to_string())
                .or_default()
                .insert(name.to_string(), record),
            None => {
                let map = self.records.get_mut(kind)?;
                let old = map.remove(name);
                if map.is_empty() {
                    self.records.remove(kind);
                }
                old
            }
        }
    }

    fn apply(
        &mut self,
        ops: Vec<Op>,
        undo: &mut Vec<(String, String, Option<Record>)>,
    ) -> Result<Vec<u64>> {
        let mut revisions = Vec::with_capacity(ops.len());
        for op in ops {
            let (kind, name, _) = op.target();
            let current = self.current(kind, name);
            check_op(&op, current.map(|r| r.revision))?;
            let create_revision = current.map(|r| r.create_revision);
            let (kind, name) = (kind.to_string(), name.to_string());
            let (new, change_op) = match op {
                Op::Check { .. } => {
                    revisions.push(current.map_or(0, |r| r.revision));
                    continue;
                }
                Op::Put { doc, .. } => {
                    let revision = self.revision + 1;
                    let record = Record {
                        kind: kind.clone(),
                        name: name.clone(),
                        revision,
                        create_revision: create_revision.unwrap_or(revision),
                        doc,
                    };
                    (Some(record), ChangeOp::Put)
                }
                Op::Delete { .. } => (None, ChangeOp::Delete),
            };
            self.revision += 1;
            let old = self.set(&kind, &name, new);
            self.changes.push_back(Change {
                revision: self.revision,
                kind: kind.clone(),
                name: name.clone(),
                op: change_op,
            });
            undo.push((kind, name, old));
            revisions.push(self.revision);
        }
        Ok(revisions)
    }
}

impl Store for MemStore {
    fn get(&self, kind: &str, name: &str) -> Result<Option<Record>> {
        Ok(self.lock().current(kind, name).cloned())
    }

    fn list(
        &self,
        kind: &str,
        parent: &str,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page> {
        let page_size = effective_page_size(page_size);
        let after = decode_page_token(page_token)?;
        let prefix = parent_prefix(parent);
        let inner = self.lock();
        let Some(map) = inner.records.get(kind) else {
            return Ok(Page::default());
        };
        let start = match &after {
            Some(after) if after.as_str() >= prefix.as_str() => Bound::Excluded(after.clone()),
            _ => Bound::Included(prefix.clone()),
        };
        let records = map
            .range((start, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(&prefix))
            .take(page_size + 1)
            .map(|(_, record)| record.clone())
            .collect();
        Ok(finish_page(records, page_size))
    }

    fn transact(&self, ops: Vec<Op>) -> Result<Vec<u64>> {
        ops.iter().try_for_each(validate_op)?;
        let mut inner = self.lock();
        let (revision, changes) = (inner.revision, inner.changes.len());
        let mut undo = Vec::new();
        match inner.apply(ops, &mut undo) {
            Ok(revisions) => {
                let keep_from = inner.revision.saturating_sub(self.change_log_limit);
                while inner
                    .changes
                    .front()
                    .is_some_and(|c| c.revision <= keep_from)
                {
                    inner.changes.pop_front();
                }
                inner.compacted = inner.compacted.max(keep_from);
                Ok(revisions)
            }
            Err(err) => {
                for (kind, name, old) in undo.into_iter().rev() {
                    inner.set(&kind, &name, old);
                }
                inner.revision = revision;
                inner.changes.truncate(changes);
                Err(err)
            }
        }
    }

    fn changes_since(&self, revision: u64) -> Result<Vec<Change>> {
        let inner = self.lock();
        if revision < inner.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted: inner.compacted,
            });
        }
        let start = inner.changes.partition_point(|c| c.revision <= revision);
        Ok(inner.changes.range(start..).cloned().collect())
    }

    fn revision(&self) -> Result<u64> {
        Ok(self.lock().revision)
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        self.lock().meta.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete_meta(&self, key: &str) -> Result<bool> {
        Ok(self.lock().meta.remove(key).is_some())
    }
}
