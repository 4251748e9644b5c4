//! One test suite over `&dyn Store`, run against every implementation: `MemStore`,
//! `SqliteStore::in_memory()` and `SqliteStore` on a file.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use serde_json::{json, Value};
use store::{ChangeOp, MemStore, Op, Precondition, SqliteStore, Store, StoreError};
use tempfile::TempDir;

const SVC: &str = "service";
const REV: &str = "revision";
const OPN: &str = "operation";

fn svc(id: &str) -> String {
    format!("projects/p/locations/l/services/{id}")
}

/// A store and whatever must outlive it.
struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

fn mem(limit: Option<u64>) -> Backend {
    let store = match limit {
        Some(limit) => MemStore::new().with_change_log_limit(limit),
        None => MemStore::new(),
    };
    Backend {
        store: Arc::new(store),
        _dir: None,
    }
}

fn sqlite_memory(limit: Option<u64>) -> Backend {
    let store = SqliteStore::in_memory().unwrap();
    let store = match limit {
        Some(limit) => store.with_change_log_limit(limit),
        None => store,
    };
    Backend {
        store: Arc::new(store),
        _dir: None,
    }
}

fn sqlite_file(limit: Option<u64>) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let store = match limit {
        Some(limit) => store.with_change_log_limit(limit),
        None => store,
    };
    Backend {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod mem_store {
            $(#[test] fn $test() { super::$test(&*super::mem(None).store) })*
            #[test] fn change_log_is_bounded() { super::change_log_is_bounded(&*super::mem(Some(5)).store) }
            #[test] fn concurrent_writers() { super::concurrent_writers(super::mem(None).store) }
        }
        mod sqlite_memory {
            $(#[test] fn $test() { super::$test(&*super::sqlite_memory(None).store) })*
            #[test] fn change_log_is_bounded() { super::change_log_is_bounded(&*super::sqlite_memory(Some(5)).store) }
            #[test] fn concurrent_writers() { super::concurrent_writers(super::sqlite_memory(None).store) }
        }
        mod sqlite_file {
            $(#[test] fn $test() { super::$test(&*super::sqlite_file(None).store) })*
            #[test] fn change_log_is_bounded() { super::change_log_is_bounded(&*super::sqlite_file(Some(5)).store) }
            #[test] fn concurrent_writers() { super::concurrent_writers(super::sqlite_file(None).store) }
        }
    };
}

suite!(
    crud,
    preconditions_and_conflicts,
    paging,
    transact_is_atomic,
    transact_ops_see_earlier_ops,
    changes_in_order,
    meta,
    invalid_arguments
);

fn crud(store: &dyn Store) {
    let name = svc("hello");
    assert_eq!(store.get(SVC, &name).unwrap(), None);
    assert_eq!(store.revision().unwrap(), 0);

    let r1 = store
        .put(SVC, &name, json!({"image": "a"}), Precondition::Absent)
        .unwrap();
    assert_eq!(r1, 1);
    let rec = store.get(SVC, &name).unwrap().unwrap();
    assert_eq!((rec.kind.as_str(), rec.name.as_str()), (SVC, name.as_str()));
    assert_eq!((rec.revision, rec.create_revision), (1, 1));
    assert_eq!(rec.doc, json!({"image": "a"}));

    // Same name, other kind: a separate record.
    assert_eq!(store.get(REV, &name).unwrap(), None);

    let r2 = store
        .put(
            SVC,
            &name,
            json!({"image": "b", "n": [1, 2.5, null, "é"]}),
            Precondition::Any,
        )
        .unwrap();
    assert!(r2 > r1);
    let rec = store.get(SVC, &name).unwrap().unwrap();
    assert_eq!((rec.revision, rec.create_revision), (r2, r1));
    assert_eq!(rec.doc, json!({"image": "b", "n": [1, 2.5, null, "é"]}));

    let r3 = store.delete(SVC, &name, Precondition::Any).unwrap();
    assert!(r3 > r2);
    assert_eq!(store.get(SVC, &name).unwrap(), None);
    assert_eq!(store.revision().unwrap(), r3);
    let err = store.delete(SVC, &name, Precondition::Any).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(err.to_string(), format!("service {name} not found"));

    // Recreated: a new create_revision.
    let r4 = store
        .put(SVC, &name, json!({}), Precondition::Absent)
        .unwrap();
    let rec = store.get(SVC, &name).unwrap().unwrap();
    assert_eq!((rec.revision, rec.create_revision), (r4, r4));
}

fn preconditions_and_conflicts(store: &dyn Store) {
    let name = svc("s");
    let r1 = store
        .put(SVC, &name, json!({"v": 1}), Precondition::Absent)
        .unwrap();

    let err = store
        .put(SVC, &name, json!({"v": 2}), Precondition::Absent)
        .unwrap_err();
    match &err {
        StoreError::AlreadyExists {
            kind,
            name: n,
            current,
        } => {
            assert_eq!(
                (kind.as_str(), n.as_str(), *current),
                (SVC, name.as_str(), r1)
            )
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert!(err.to_string().contains(&name), "{err}");

    let r2 = store
        .put(SVC, &name, json!({"v": 2}), Precondition::Revision(r1))
        .unwrap();
    // The writer that read r1 is now stale.
    let err = store
        .put(SVC, &name, json!({"v": 3}), Precondition::Revision(r1))
        .unwrap_err();
    match &err {
        StoreError::Conflict {
            kind,
            name: n,
            expected,
            current,
        } => {
            assert_eq!(
                (kind.as_str(), n.as_str(), *expected, *current),
                (SVC, name.as_str(), r1, r2)
            )
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(err.is_conflict());
    let msg = err.to_string();
    assert!(
        msg.contains("service")
            && msg.contains(&name)
            && msg.contains(&format!("current revision is {r2}")),
        "{msg}"
    );
    assert_eq!(store.get(SVC, &name).unwrap().unwrap().doc, json!({"v": 2}));

    let err = store
        .delete(SVC, &name, Precondition::Revision(r1))
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(store.get(SVC, &name).unwrap().is_some());

    let r3 = store
        .put(SVC, &name, json!({"v": 3}), Precondition::Exists)
        .unwrap();
    for expected in [Precondition::Exists, Precondition::Revision(r3)] {
        let err = store
            .put(SVC, &svc("missing"), json!({}), expected)
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        let err = store.delete(SVC, &svc("missing"), expected).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    }
    assert_eq!(store.get(SVC, &svc("missing")).unwrap(), None);

    // Failed writes consumed no revision and logged nothing.
    assert_eq!(store.revision().unwrap(), r3);
    assert_eq!(store.changes_since(0).unwrap().len(), 3);

    let r4 = store
        .delete(SVC, &name, Precondition::Revision(r3))
        .unwrap();
    assert_eq!(r4, r3 + 1);
}

fn names(records: &[store::Record]) -> Vec<String> {
    records.iter().map(|r| r.name.clone()).collect()
}

fn paging(store: &dyn Store) {
    let parent = "projects/p/locations/l";
    for i in 0..25 {
        store
            .put(
                SVC,
                &svc(&format!("s{i:02}")),
                json!({"i": i}),
                Precondition::Absent,
            )
            .unwrap();
    }
    // Neighbours that must not show up under `parent`.
    store
        .put(
            SVC,
            "projects/p/locations/l2/services/s00",
            json!({}),
            Precondition::Absent,
        )
        .unwrap();
    store
        .put(
            SVC,
            "projects/p/locations/k/services/s00",
            json!({}),
            Precondition::Absent,
        )
        .unwrap();
    store
        .put(
            SVC,
            "projects/p/locations/l",
            json!({}),
            Precondition::Absent,
        )
        .unwrap();
    store
        .put(
            REV,
            &format!("{}/revisions/s00-00001", svc("s00")),
            json!({}),
            Precondition::Absent,
        )
        .unwrap();

    let page = store.list(SVC, parent, 10, None).unwrap();
    let expected: Vec<String> = (0..10).map(|i| svc(&format!("s{i:02}"))).collect();
    assert_eq!(names(&page.records), expected);
    assert_eq!(page.records[3].doc, json!({"i": 3}));
    let token = page.next_page_token.expect("more pages");

    // Changes between pages: one before the cursor (never seen), one after (seen), the
    // cursor record itself deleted (paging goes on from its name).
    store
        .put(SVC, &svc("s00a"), json!({}), Precondition::Absent)
        .unwrap();
    store
        .put(SVC, &svc("s99"), json!({}), Precondition::Absent)
        .unwrap();
    store.delete(SVC, &svc("s09"), Precondition::Any).unwrap();
    store.delete(SVC, &svc("s12"), Precondition::Any).unwrap();

    let page = store.list(SVC, parent, 10, Some(&token)).unwrap();
    let expected: Vec<String> = [10, 11, 13, 14, 15, 16, 17, 18, 19, 20]
        .iter()
        .map(|i| svc(&format!("s{i:02}")))
        .collect();
    assert_eq!(names(&page.records), expected);
    // The same token again gives the same page (tokens are positions, not cursors).
    assert_eq!(store.list(SVC, parent, 10, Some(&token)).unwrap(), page);
    let token = page.next_page_token.expect("more pages");

    let page = store.list(SVC, parent, 10, Some(&token)).unwrap();
    let expected: Vec<String> = ["s21", "s22", "s23", "s24", "s99"]
        .iter()
        .map(|s| svc(s))
        .collect();
    assert_eq!(names(&page.records), expected);
    assert_eq!(page.next_page_token, None);

    // A page that ends exactly at the last record has no next token.
    let page = store.list(SVC, parent, 25, None).unwrap();
    assert_eq!(page.records.len(), 25);
    assert_eq!(page.next_page_token, None);
    let page = store.list(SVC, parent, 24, None).unwrap();
    assert!(page.next_page_token.is_some());
    let last = store
        .list(SVC, parent, 24, page.next_page_token.as_deref())
        .unwrap();
    assert_eq!(names(&last.records), vec![svc("s99")]);
    assert_eq!(last.next_page_token, None);

    // Trailing slash, empty parent, page size 0, other kinds, nothing under a parent.
    assert_eq!(
        store
            .list(SVC, "projects/p/locations/l/", 0, None)
            .unwrap()
            .records
            .len(),
        25
    );
    let all = store.list(SVC, "", 0, None).unwrap();
    assert_eq!(all.records.len(), 28);
    let all_names = names(&all.records);
    let mut sorted = all_names.clone();
    sorted.sort();
    assert_eq!(all_names, sorted);
    assert_eq!(store.list(REV, parent, 0, None).unwrap().records.len(), 1);
    assert_eq!(
        store.list(REV, &svc("s00"), 0, None).unwrap().records.len(),
        1
    );
    assert_eq!(
        store.list(REV, &svc("s01"), 0, None).unwrap(),
        store::Page::default()
    );
    assert_eq!(
        store.list("job", "", 0, None).unwrap(),
        store::Page::default()
    );

    // Walking every page of size 1 sees each record once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = store.list(SVC, parent, 1, token.as_deref()).unwrap();
        seen.extend(names(&page.records));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);
}

fn transact_is_atomic(store: &dyn Store) {
    let before = store
        .put(SVC, &svc("existing"), json!({"v": 1}), Precondition::Absent)
        .unwrap();
    let ops = vec![
        Op::put(SVC, svc("a"), json!({}), Precondition::Absent),
        Op::put(
            REV,
            format!("{}/revisions/a-00001", svc("a")),
            json!({}),
            Precondition::Absent,
        ),
        Op::delete(SVC, svc("existing"), Precondition::Any),
        // Fails: nothing above may be written.
        Op::put(
            OPN,
            "projects/p/locations/l/operations/op1",
            json!({}),
            Precondition::Revision(7),
        ),
    ];
    let err = store.transact(ops).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { ref kind, .. } if kind == OPN),
        "{err}"
    );
    assert_eq!(store.get(SVC, &svc("a")).unwrap(), None);
    assert_eq!(
        store
            .get(REV, &format!("{}/revisions/a-00001", svc("a")))
            .unwrap(),
        None
    );
    assert_eq!(
        store.get(SVC, &svc("existing")).unwrap().unwrap().revision,
        before
    );
    assert_eq!(store.revision().unwrap(), before);
    assert_eq!(store.changes_since(before).unwrap(), vec![]);

    // A stale check fails the whole transaction too.
    let err = store
        .transact(vec![
            Op::put(
                REV,
                format!("{}/revisions/existing-00002", svc("existing")),
                json!({}),
                Precondition::Absent,
            ),
            Op::check(SVC, svc("existing"), Precondition::Revision(before + 5)),
        ])
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(store.list(REV, "", 0, None).unwrap().records, vec![]);

    // A service, its new revision and the operation, together.
    let revs = store
        .transact(vec![
            Op::check(SVC, svc("existing"), Precondition::Revision(before)),
            Op::put(
                SVC,
                svc("existing"),
                json!({"v": 2}),
                Precondition::Revision(before),
            ),
            Op::put(
                REV,
                format!("{}/revisions/existing-00002", svc("existing")),
                json!({}),
                Precondition::Absent,
            ),
            Op::put(
                OPN,
                "projects/p/locations/l/operations/op1",
                json!({"done": false}),
                Precondition::Absent,
            ),
        ])
        .unwrap();
    assert_eq!(revs, vec![before, before + 1, before + 2, before + 3]);
    assert_eq!(store.revision().unwrap(), before + 3);
    assert_eq!(
        store.get(SVC, &svc("existing")).unwrap().unwrap().doc,
        json!({"v": 2})
    );
    assert_eq!(
        store
            .get(OPN, "projects/p/locations/l/operations/op1")
            .unwrap()
            .unwrap()
            .revision,
        before + 3
    );

    assert_eq!(store.transact(vec![]).unwrap(), Vec::<u64>::new());
    assert_eq!(
        store
            .transact(vec![Op::check(SVC, svc("nope"), Precondition::Absent)])
            .unwrap(),
        vec![0]
    );
    assert_eq!(store.revision().unwrap(), before + 3);
}

fn transact_ops_see_earlier_ops(store: &dyn Store) {
    let name = svc("x");
    let revs = store
        .transact(vec![
            Op::put(SVC, &name, json!(1), Precondition::Absent),
            Op::put(SVC, &name, json!(2), Precondition::Revision(1)),
            Op::check(SVC, &name, Precondition::Revision(2)),
            Op::delete(SVC, &name, Precondition::Revision(2)),
            Op::put(SVC, &name, json!(3), Precondition::Absent),
        ])
        .unwrap();
    assert_eq!(revs, vec![1, 2, 2, 3, 4]);
    let rec = store.get(SVC, &name).unwrap().unwrap();
    assert_eq!(
        (rec.revision, rec.create_revision, rec.doc),
        (4, 4, json!(3))
    );
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
            (3, ChangeOp::Delete),
            (4, ChangeOp::Put)
        ]
    );

    // Undo inside a failed transaction restores an overwritten and a deleted record.
    let err = store
        .transact(vec![
            Op::put(SVC, &name, json!("overwritten"), Precondition::Any),
            Op::delete(SVC, &name, Precondition::Any),
            Op::delete(SVC, &name, Precondition::Any),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let again = store.get(SVC, &name).unwrap().unwrap();
    assert_eq!(
        (again.revision, again.create_revision, again.doc),
        (4, 4, json!(3))
    );
    assert_eq!(store.revision().unwrap(), 4);
}

fn changes_in_order(store: &dyn Store) {
    assert_eq!(store.changes_since(0).unwrap(), vec![]);
    let mut expected = Vec::new();
    for i in 0..5 {
        let name = svc(&format!("c{i}"));
        let rev = store
            .put(SVC, &name, json!({"i": i}), Precondition::Absent)
            .unwrap();
        expected.push((rev, SVC.to_string(), name.clone(), ChangeOp::Put));
        if i % 2 == 0 {
            let rev = store.delete(SVC, &name, Precondition::Any).unwrap();
            expected.push((rev, SVC.to_string(), name, ChangeOp::Delete));
        }
    }
    let revs = store
        .transact(vec![
            Op::put(
                OPN,
                "projects/p/locations/l/operations/o",
                json!({}),
                Precondition::Any,
            ),
            Op::put(SVC, svc("c1"), json!({}), Precondition::Exists),
        ])
        .unwrap();
    expected.push((
        revs[0],
        OPN.to_string(),
        "projects/p/locations/l/operations/o".to_string(),
        ChangeOp::Put,
    ));
    expected.push((revs[1], SVC.to_string(), svc("c1"), ChangeOp::Put));

    let changes = store.changes_since(0).unwrap();
    let got: Vec<_> = changes
        .iter()
        .map(|c| (c.revision, c.kind.clone(), c.name.clone(), c.op))
        .collect();
    assert_eq!(got, expected);
    assert!(changes.windows(2).all(|w| w[0].revision < w[1].revision));
    assert_eq!(changes.last().unwrap().revision, store.revision().unwrap());

    let mid = changes[3].revision;
    assert_eq!(store.changes_since(mid).unwrap(), changes[4..].to_vec());
    assert_eq!(
        store.changes_since(store.revision().unwrap()).unwrap(),
        vec![]
    );
    assert_eq!(store.changes_since(1_000_000).unwrap(), vec![]);
}

/// Runs on a store keeping 5 changes.
fn change_log_is_bounded(store: &dyn Store) {
    for i in 0..12 {
        store
            .put(SVC, &svc("busy"), json!(i), Precondition::Any)
            .unwrap();
    }
    let changes = store.changes_since(7).unwrap();
    assert_eq!(
        changes.iter().map(|c| c.revision).collect::<Vec<_>>(),
        vec![8, 9, 10, 11, 12]
    );
    let err = store.changes_since(6).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Compacted {
                requested: 6,
                compacted: 7
            }
        ),
        "{err}"
    );
    let err = store.changes_since(0).unwrap_err();
    assert!(
        err.to_string().contains("list the resources again"),
        "{err}"
    );
    assert_eq!(store.changes_since(10).unwrap().len(), 2);
    // Records are untouched by pruning.
    assert_eq!(
        store.get(SVC, &svc("busy")).unwrap().unwrap().doc,
        json!(11)
    );
}

fn meta(store: &dyn Store) {
    assert_eq!(store.get_meta("project-number").unwrap(), None);
    store.put_meta("project-number", b"123456789012").unwrap();
    assert_eq!(
        store.get_meta("project-number").unwrap().as_deref(),
        Some(&b"123456789012"[..])
    );
    store.put_meta("project-number", b"").unwrap();
    assert_eq!(store.get_meta("project-number").unwrap(), Some(vec![]));
    let key = [0u8, 255, 7];
    store.put_meta("signing-key", &key).unwrap();
    assert_eq!(store.get_meta("signing-key").unwrap(), Some(key.to_vec()));
    assert!(store.delete_meta("signing-key").unwrap());
    assert!(!store.delete_meta("signing-key").unwrap());
    assert_eq!(store.get_meta("signing-key").unwrap(), None);
    // Meta lives outside revisions and the change log.
    assert_eq!(store.revision().unwrap(), 0);
    assert_eq!(store.changes_since(0).unwrap(), vec![]);
}

fn invalid_arguments(store: &dyn Store) {
    for (kind, name) in [("", "projects/p"), (SVC, ""), (SVC, "a\0b")] {
        let err = store
            .put(kind, name, Value::Null, Precondition::Any)
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    }
    let err = store
        .transact(vec![
            Op::put(SVC, svc("ok"), json!({}), Precondition::Any),
            Op::delete(SVC, "", Precondition::Any),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert_eq!(store.get(SVC, &svc("ok")).unwrap(), None);
    for token in ["garbage!", "Zm9v"] {
        let err = store.list(SVC, "", 10, Some(token)).unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    }
}

/// Several threads write their own records and race on a shared counter with
/// compare-and-swap; revisions stay unique and increase in every thread.
fn concurrent_writers(store: Arc<dyn Store>) {
    const THREADS: usize = 4;
    const WRITES: usize = 40;
    const INCREMENTS: usize = 15;
    let counter = svc("counter");
    store
        .put(SVC, &counter, json!(0), Precondition::Absent)
        .unwrap();

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let counter = counter.clone();
            thread::spawn(move || {
                let mut revisions = Vec::new();
                let mut conflicts = 0;
                let mut increments = 0;
                for i in 0..WRITES {
                    let name = svc(&format!("t{t}-{i}"));
                    revisions.push(
                        store
                            .put(SVC, &name, json!({"t": t, "i": i}), Precondition::Absent)
                            .unwrap(),
                    );
                    if increments < INCREMENTS && i % 2 == 0 {
                        loop {
                            let rec = store.get(SVC, &counter).unwrap().unwrap();
                            let next = json!(rec.doc.as_u64().unwrap() + 1);
                            match store.put(
                                SVC,
                                &counter,
                                next,
                                Precondition::Revision(rec.revision),
                            ) {
                                Ok(rev) => {
                                    revisions.push(rev);
                                    increments += 1;
                                    break;
                                }
                                Err(e) if e.is_conflict() => conflicts += 1,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                }
                (revisions, increments, conflicts)
            })
        })
        .collect();

    let mut all = HashSet::new();
    let mut total_increments = 0;
    let mut total = 0;
    for handle in handles {
        let (revisions, increments, _conflicts) = handle.join().unwrap();
        assert!(
            revisions.windows(2).all(|w| w[0] < w[1]),
            "not monotonic in a thread: {revisions:?}"
        );
        total += revisions.len();
        all.extend(revisions);
        total_increments += increments;
    }
    assert_eq!(all.len(), total, "a revision was given twice");
    assert_eq!(total_increments, THREADS * INCREMENTS);
    assert_eq!(
        store.get(SVC, &counter).unwrap().unwrap().doc,
        json!(THREADS * INCREMENTS)
    );
    // Every revision 1..=N given once: the counter's creation plus every successful write.
    assert_eq!(store.revision().unwrap(), total as u64 + 1);
    let changes = store.changes_since(0).unwrap();
    assert_eq!(changes.len(), total + 1);
    assert!(changes
        .iter()
        .enumerate()
        .all(|(i, c)| c.revision == i as u64 + 1));
    assert_eq!(
        store.list(SVC, "", 1000, None).unwrap().records.len(),
        THREADS * WRITES + 1
    );
}
