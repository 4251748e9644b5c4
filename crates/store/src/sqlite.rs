//! The embedded SQLite [`Store`].
//!
//! One file (plus SQLite's `-wal` and `-shm` beside it), created mode 0600 since platform
//! secrets will live in its meta table. WAL journal with `synchronous=NORMAL`: a commit
//! survives a crash of homerun; a power loss may undo the last commits, never corrupts.
//! One connection behind a mutex serves reads and writes; every write is an `IMMEDIATE`
//! transaction, so revisions stay unique even with another process on the same file
//! (which the busy timeout then waits for).
//!
//! The schema is versioned by `PRAGMA user_version` (the number of [`MIGRATIONS`] applied)
//! and the file is marked as homerun's by `PRAGMA application_id`: a file that is not
//! SQLite, a SQLite file of another program, or one from a newer homerun is refused with
//! [`StoreError::Corrupt`] and never modified.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::error::SqlContext;
use crate::{
    check_op, decode_page_token, effective_page_size, finish_page, parent_prefix, validate_op,
    Change, ChangeOp, Op, Page, Record, Result, Store, StoreError, DEFAULT_CHANGE_LOG_LIMIT,
};

/// `PRAGMA application_id` of a homerun store: "HRun".
const APPLICATION_ID: i32 = 0x4852_756e;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one step per version: `user_version` N means the first N were applied.
/// Never edit a released step; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: records, change log, global counters, meta.
    "CREATE TABLE resources (
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         revision INTEGER NOT NULL,
         create_revision INTEGER NOT NULL,
         doc TEXT NOT NULL,
         PRIMARY KEY (kind, name)
     ) WITHOUT ROWID;
     CREATE TABLE changes (
         revision INTEGER PRIMARY KEY,
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         op TEXT NOT NULL CHECK (op IN ('put', 'delete'))
     );
     CREATE TABLE counters (
         id INTEGER PRIMARY KEY CHECK (id = 0),
         revision INTEGER NOT NULL,
         compacted INTEGER NOT NULL
     );
     INSERT INTO counters (id, revision, compacted) VALUES (0, 0, 0);
     CREATE TABLE meta (
         key TEXT PRIMARY KEY,
         value BLOB NOT NULL
     ) WITHOUT ROWID;",
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Where the file is, for messages ("in memory" otherwise).
    location: String,
    change_log_limit: u64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens or creates the store at `path` (its directory must exist), migrating its schema
    /// to the current version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        create_private(path)?;
        let location = path.display().to_string();
        let conn = Connection::open(path).ctx(|| format!("opening {location}"))?;
        Self::init(conn, location, true)
    }

    /// A fresh store in memory, for tests.
    pub fn in_memory() -> Result<Self> {
        let conn =
            Connection::open_in_memory().ctx(|| "opening an in-memory database".to_string())?;
        Self::init(conn, "in-memory store".to_string(), false)
    }

    /// Keeps only the last `limit` changes (at least 1).
    pub fn with_change_log_limit(mut self, limit: u64) -> Self {
        self.change_log_limit = limit.max(1);
        self
    }

    /// The schema version this build writes.
    pub fn schema_version() -> u32 {
        MIGRATIONS.len() as u32
    }

    fn init(mut conn: Connection, location: String, file: bool) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .ctx(|| format!("{location}: setting the busy timeout"))?;
        // Identify the file before changing anything in it.
        check_identity(&conn, &location)?;
        if file {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(|e| open_error(&location, "enabling WAL", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Corrupt(format!(
                    "{location}: cannot use WAL journal (got {mode})"
                )));
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| open_error(&location, "setting synchronous", e))?;
        migrate(&mut conn, &location)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            location,
            change_log_limit: DEFAULT_CHANGE_LOG_LIMIT,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // rusqlite rolls an open transaction back when it is dropped, also while unwinding,
        // so a poisoned connection holds no half-applied write.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Creates the file with mode 0600 if it does not exist (SQLite gives its `-wal` and `-shm`
/// files the database file's mode).
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: PathBuf::from(path),
            source,
        }),
    }
}

/// Maps "not a database" to a clear [`StoreError::Corrupt`].
fn open_error(location: &str, doing: &str, err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::Corrupt(format!(
            "{location} is not a homerun store: not an SQLite database ({err})"
        )),
        Some(ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(format!("{location}: damaged SQLite database ({err})"))
        }
        _ => StoreError::Sqlite {
            context: format!("{location}: {doing}"),
            source: err,
        },
    }
}

fn check_identity(conn: &Connection, location: &str) -> Result<()> {
    let read = |pragma: &str| -> Result<i64> {
        conn.pragma_query_value(None, pragma, |row| row.get(0))
            .map_err(|e| open_error(location, &format!("reading {pragma}"), e))
    };
    let application_id = read("application_id")?;
    let version = read("user_version")?;
    if application_id == i64::from(APPLICATION_ID) {
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::Corrupt(format!(
                "{location} has schema version {version}, newer than this homerun supports ({}): written by a newer homerun?",
                MIGRATIONS.len()
            )));
        }
        return Ok(());
    }
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .map_err(|e| open_error(location, "reading the schema", e))?;
    if application_id == 0 && version == 0 && objects == 0 {
        return Ok(()); // empty: a new store
    }
    Err(StoreError::Corrupt(format!(
        "{location} is an SQLite database but not a homerun store (application_id {application_id:#x}, user_version {version}, {objects} schema objects)"
    )))
}

fn migrate(conn: &mut Connection, location: &str) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx(|| format!("{location}: starting the schema migration"))?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .ctx(|| format!("{location}: reading user_version"))?;
    let start = usize::try_from(version).unwrap_or(usize::MAX);
    if start >= MIGRATIONS.len() {
        return Ok(());
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(step)
            .ctx(|| format!("{location}: migrating the schema to version {}", i + 1))?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .ctx(|| format!("{location}: setting application_id"))?;
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
        .ctx(|| format!("{location}: setting user_version"))?;
    tx.commit()
        .ctx(|| format!("{location}: committing the schema migration"))
}

/// Revisions are stored as SQLite integers (i64); they count writes, so never reach 2^63.
fn to_u64(v: i64) -> u64 {
    v.max(0) as u64
}

fn parse_doc(kind: &str, name: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "{kind} {name}: stored document is not valid JSON: {e}"
        ))
    })
}

/// Current (revision, create_revision) of a record.
fn current(tx: &Transaction<'_>, kind: &str, name: &str) -> Result<Option<(u64, u64)>> {
    tx.prepare_cached(
        "SELECT revision, create_revision FROM resources WHERE kind = ?1 AND name = ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![kind, name], |row| {
            Ok((to_u64(row.get(0)?), to_u64(row.get(1)?)))
        })
        .optional()
    })
    .ctx(|| format!("reading {kind} {name}"))
}

impl Store for SqliteStore {
    fn get(&self, kind: &str, name: &str) -> Result<Option<Record>> {
        let conn = self.lock();
        let row = conn
            .prepare_cached("SELECT revision, create_revision, doc FROM resources WHERE kind = ?1 AND name = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![kind, name], |row| {
                    Ok((to_u64(row.get(0)?), to_u64(row.get(1)?), row.get::<_, String>(2)?))
                })
                .optional()
            })
            .ctx(|| format!("{}: reading {kind} {name}", self.location))?;
        row.map(|(revision, create_revision, doc)| {
            Ok(Record {
                kind: kind.to_string(),
                name: name.to_string(),
                revision,
                create_revision,
                doc: parse_doc(kind, name, &doc)?,
            })
        })
        .transpose()
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
        // Names below the prefix sort between "a/b/" and "a/b0" ('0' follows '/'); BINARY
        // collation compares UTF-8 bytes, the order of Rust strings.
        let upper = if prefix.is_empty() {
            None
        } else {
            Some(format!("{}0", &prefix[..prefix.len() - 1]))
        };
        let (lower, inclusive) = match after {
            Some(after) if after >= prefix => (after, false),
            _ => (prefix.clone(), true),
        };
        let sql = format!(
            "SELECT name, revision, create_revision, doc FROM resources
             WHERE kind = ?1 AND name {} ?2 AND (?3 IS NULL OR name < ?3)
             ORDER BY name LIMIT ?4",
            if inclusive { ">=" } else { ">" }
        );
        let conn = self.lock();
        let context = || format!("{}: listing {kind} under {parent:?}", self.location);
        let mut stmt = conn.prepare_cached(&sql).ctx(context)?;
        let rows = stmt
            .query_map(params![kind, lower, upper, (page_size + 1) as i64], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    to_u64(row.get(1)?),
                    to_u64(row.get(2)?),
                    row.get::<_, String>(3)?,
                ))
            })
            .ctx(context)?;
        let mut records = Vec::new();
        for row in rows {
            let (name, revision, create_revision, doc) = row.ctx(context)?;
            let doc = parse_doc(kind, &name, &doc)?;
            records.push(Record {
                kind: kind.to_string(),
                name,
                revision,
                create_revision,
                doc,
            });
        }
        Ok(finish_page(records, page_size))
    }

    fn transact(&self, ops: Vec<Op>) -> Result<Vec<u64>> {
        ops.iter().try_for_each(validate_op)?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.lock();
        let location = &self.location;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(|| format!("{location}: starting a write"))?;
        let (mut revision, compacted): (u64, u64) = tx
            .query_row(
                "SELECT revision, compacted FROM counters WHERE id = 0",
                [],
                |row| Ok((to_u64(row.get(0)?), to_u64(row.get(1)?))),
            )
            .optional()
            .ctx(|| format!("{location}: reading the revision counter"))?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{location}: the revision counter is missing"))
            })?;

        let mut revisions = Vec::with_capacity(ops.len());
        // Dropping `tx` on any error below rolls everything back.
        for op in ops {
            let (kind, name, _) = op.target();
            let cur = current(&tx, kind, name)?;
            check_op(&op, cur.map(|(r, _)| r))?;
            let change_op = match &op {
                Op::Check { .. } => {
                    revisions.push(cur.map_or(0, |(r, _)| r));
                    continue;
                }
                Op::Put { doc, .. } => {
                    revision += 1;
                    let create_revision = cur.map_or(revision, |(_, c)| c);
                    let text = serde_json::to_string(doc)
                        .map_err(|e| StoreError::InvalidArgument(format!("{kind} {name}: {e}")))?;
                    tx.prepare_cached(
                        "INSERT INTO resources (kind, name, revision, create_revision, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (kind, name) DO UPDATE SET revision = excluded.revision, doc = excluded.doc",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            kind,
                            name,
                            revision as i64,
                            create_revision as i64,
                            text
                        ])
                    })
                    .ctx(|| format!("{location}: writing {kind} {name}"))?;
                    "put"
                }
                Op::Delete { .. } => {
                    revision += 1;
                    tx.prepare_cached("DELETE FROM resources WHERE kind = ?1 AND name = ?2")
                        .and_then(|mut stmt| stmt.execute(params![kind, name]))
                        .ctx(|| format!("{location}: deleting {kind} {name}"))?;
                    "delete"
                }
            };
            tx.prepare_cached(
                "INSERT INTO changes (revision, kind, name, op) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![revision as i64, kind, name, change_op]))
            .ctx(|| format!("{location}: logging the change of {kind} {name}"))?;
            revisions.push(revision);
        }

        let keep_from = revision.saturating_sub(self.change_log_limit);
        if keep_from > compacted {
            tx.prepare_cached("DELETE FROM changes WHERE revision <= ?1")
                .and_then(|mut stmt| stmt.execute(params![keep_from as i64]))
                .ctx(|| format!("{location}: pruning the change log"))?;
        }
        tx.prepare_cached("UPDATE counters SET revision = ?1, compacted = ?2 WHERE id = 0")
            .and_then(|mut stmt| {
                stmt.execute(params![revision as i64, keep_from.max(compacted) as i64])
            })
            .ctx(|| format!("{location}: updating the revision counter"))?;
        tx.commit()
            .ctx(|| format!("{location}: committing a write"))?;
        Ok(revisions)
    }

    fn changes_since(&self, revision: u64) -> Result<Vec<Change>> {
        let location = &self.location;
        let context = || format!("{location}: reading the change log after revision {revision}");
        let mut conn = self.lock();
        // One read transaction, so the compaction check and the rows agree.
        let tx = conn.transaction().ctx(context)?;
        let compacted: u64 = to_u64(
            tx.query_row("SELECT compacted FROM counters WHERE id = 0", [], |row| {
                row.get(0)
            })
            .ctx(context)?,
        );
        if revision < compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted,
            });
        }
        let after = i64::try_from(revision).unwrap_or(i64::MAX);
        let mut stmt = tx
            .prepare_cached("SELECT revision, kind, name, op FROM changes WHERE revision > ?1 ORDER BY revision")
            .ctx(context)?;
        let rows = stmt
            .query_map(params![after], |row| {
                Ok((
                    to_u64(row.get(0)?),
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .ctx(context)?;
        let mut changes = Vec::new();
        for row in rows {
            let (revision, kind, name, op) = row.ctx(context)?;
            let op = match op.as_str() {
                "put" => ChangeOp::Put,
                "delete" => ChangeOp::Delete,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "{location}: change {revision} of {kind} {name} has unknown op {other:?}"
                    )))
                }
            };
            changes.push(Change {
                revision,
                kind,
                name,
                op,
            });
        }
        Ok(changes)
    }

    fn revision(&self) -> Result<u64> {
        let conn = self.lock();
        conn.query_row("SELECT revision FROM counters WHERE id = 0", [], |row| {
            row.get(0)
        })
        .map(to_u64)
        .ctx(|| format!("{}: reading the revision counter", self.location))
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let conn = self.lock();
        conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut stmt| stmt.query_row(params![key], |row| row.get(0)).optional())
            .ctx(|| format!("{}: reading meta {key}", self.location))
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        let conn = self.lock();
        conn.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .and_then(|mut stmt| stmt.execute(params![key, value]))
            .map(drop)
            .ctx(|| format!("{}: writing meta {key}", self.location))
    }

    fn delete_meta(&self, key: &str) -> Result<bool> {
        let conn = self.lock();
        conn.prepare_cached("DELETE FROM meta WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute(params![key]))
            .map(|n| n > 0)
            .ctx(|| format!("{}: deleting meta {key}", self.location))
    }
}
