//! What only the SQLite store has: a file that persists, a schema, a format to refuse.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use rusqlite::Connection;
use serde_json::json;
use store::{ChangeOp, Precondition, SqliteStore, Store, StoreError};

const SVC: &str = "service";

fn svc(id: &str) -> String {
    format!("projects/p/locations/l/services/{id}")
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn state_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .put(SVC, &svc("a"), json!({"image": "a"}), Precondition::Absent)
            .unwrap();
        store
            .put(SVC, &svc("b"), json!({"image": "b"}), Precondition::Absent)
            .unwrap();
        store
            .put(
                SVC,
                &svc("a"),
                json!({"image": "a2"}),
                Precondition::Revision(1),
            )
            .unwrap();
        store.delete(SVC, &svc("b"), Precondition::Any).unwrap();
        store.put_meta("project-number", b"42").unwrap();
        // WAL mode: the write-ahead log sits beside the file while it is open.
        assert!(dir.path().join("state.db-wal").exists());
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let store = SqliteStore::open(&path).unwrap();
    let a = store.get(SVC, &svc("a")).unwrap().unwrap();
    assert_eq!(
        (a.revision, a.create_revision, a.doc),
        (3, 1, json!({"image": "a2"}))
    );
    assert_eq!(store.get(SVC, &svc("b")).unwrap(), None);
    assert_eq!(
        store.get_meta("project-number").unwrap(),
        Some(b"42".to_vec())
    );
    assert_eq!(store.revision().unwrap(), 4);
    let ops: Vec<_> = store
        .changes_since(0)
        .unwrap()
        .into_iter()
        .map(|c| (c.revision, c.op))
        .collect();
    assert_eq!(
        ops,
        vec![
            (1, ChangeOp::Put),
            (2, ChangeOp::Put),
            (3, ChangeOp::Put),
            (4, ChangeOp::Delete)
        ]
    );
    // Revisions go on from where they were.
    assert_eq!(
        store
            .put(SVC, &svc("c"), json!({}), Precondition::Absent)
            .unwrap(),
        5
    );
    drop(store);

    let conn = raw(&path);
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SqliteStore::schema_version());
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn two_handles_on_one_file_share_the_counter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let stores: Vec<Arc<dyn Store>> = (0..2)
        .map(|_| Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>)
        .collect();
    let handles: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(t, store)| {
            let store = Arc::clone(store);
            thread::spawn(move || {
                (0..30)
                    .map(|i| {
                        store
                            .put(
                                SVC,
                                &svc(&format!("h{t}-{i}")),
                                json!(i),
                                Precondition::Absent,
                            )
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (1..=60).collect::<Vec<_>>());
    assert_eq!(stores[0].revision().unwrap(), 60);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let garbage =
        b"this is not a database, it is a text file that happens to be long enough. ".repeat(20);
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("not an SQLite database"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn another_programs_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    raw(&path)
        .execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT);")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("not a homerun store"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_store_from_a_newer_homerun_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    raw(&path).pragma_update(None, "user_version", 99).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn a_damaged_document_names_its_resource() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .put(SVC, &svc("ok"), json!({}), Precondition::Absent)
            .unwrap();
        store
            .put(SVC, &svc("bad"), json!({}), Precondition::Absent)
            .unwrap();
    }
    raw(&path)
        .execute(
            "UPDATE resources SET doc = '{\"trunc' WHERE name = ?1",
            [svc("bad")],
        )
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.get(SVC, &svc("ok")).unwrap().is_some());
    for err in [
        store.get(SVC, &svc("bad")).unwrap_err(),
        store.list(SVC, "", 0, None).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("service") && msg.contains(&svc("bad")),
            "{msg}"
        );
    }
}

#[test]
fn reopening_keeps_the_schema_and_a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    for _ in 0..3 {
        let store = SqliteStore::open(&path).unwrap();
        store
            .put(SVC, &svc("a"), json!({}), Precondition::Any)
            .unwrap();
    }
    assert_eq!(SqliteStore::open(&path).unwrap().revision().unwrap(), 3);

    let missing = dir.path().join("no/such/dir/state.db");
    let err = SqliteStore::open(&missing).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir/state.db"), "{err}");
}
