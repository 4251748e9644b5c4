//! Revision ids, uids, etags, URLs and revisions made of services.

use api::defaults::apply_service_defaults;
use api::json::{self, EnumEncoding};
use api::names::{validate_revision_id, RevisionName, MAX_SERVICE_ID_LEN};
use api::naming::{
    etag, generate_revision_id, new_operation_id, random_revision_suffix, revision_id,
    revision_id_for_template, revision_id_from_suffix, Endpoint,
};
use api::{Revision, RevisionTemplate, Service};
use serde_json::json;

#[test]
fn revision_ids_as_cloud_run_makes_them() {
    assert_eq!(revision_id("hello", 2, "xoz"), "hello-00002-xoz");
    assert_eq!(revision_id("hello", 123_456, "abc"), "hello-123456-abc");
    let generated = generate_revision_id("hello", 1);
    assert_eq!(generated.len(), "hello-00001-abc".len());
    assert!(generated.starts_with("hello-00001-"), "{generated}");
    assert!(
        generated[12..].bytes().all(|b| b.is_ascii_lowercase()),
        "{generated}"
    );
    // Random enough that a few draws differ.
    let draws: std::collections::HashSet<String> =
        (0..20).map(|_| random_revision_suffix()).collect();
    assert!(draws.len() > 10, "{draws:?}");
    // The longest service id still makes a valid revision id.
    let longest = "a".repeat(MAX_SERVICE_ID_LEN);
    let id = generate_revision_id(&longest, 99_999);
    assert_eq!(id.len(), 59);
    validate_revision_id(&id).unwrap();
}

#[test]
fn revision_id_from_the_template() {
    let named = RevisionTemplate {
        revision: "hello-blue".into(),
        ..Default::default()
    };
    assert_eq!(revision_id_for_template("hello", 3, &named), "hello-blue");
    let unnamed = RevisionTemplate::default();
    assert!(revision_id_for_template("hello", 3, &unnamed).starts_with("hello-00003-"));
    assert_eq!(revision_id_from_suffix("hello", "v2"), "hello-v2");
}

#[test]
fn operation_ids_are_valid_names() {
    let id = new_operation_id();
    assert_eq!(id.len(), 32);
    let name = format!("projects/p/locations/l/operations/{id}");
    assert_eq!(name.parse::<api::OperationName>().unwrap().operation, id);
}

#[test]
fn etags_hash_the_content() {
    let mut s: Service =
        json::from_value(json!({"name": "projects/p/locations/l/services/a", "generation": "1"}))
            .unwrap();
    let e1 = s.compute_etag();
    assert!(
        e1.starts_with('"') && e1.ends_with('"') && e1.len() == 34,
        "{e1}"
    );
    s.etag = e1.clone();
    assert_eq!(
        s.compute_etag(),
        e1,
        "the etag member itself does not count"
    );
    s.generation = 2;
    assert_ne!(s.compute_etag(), e1);
    // Label order does not matter (maps are sorted).
    let a: Service = json::from_value(json!({"labels": {"a": "1", "b": "2"}})).unwrap();
    let b: Service = json::from_value(json!({"labels": {"b": "2", "a": "1"}})).unwrap();
    assert_eq!(etag(&a), etag(&b));
}

#[test]
fn service_and_tag_urls() {
    let e = Endpoint::new("local", "localhost", 8080);
    assert_eq!(
        e.service_uri("local", "hello"),
        "http://hello.localhost:8080"
    );
    assert_eq!(
        e.service_uri("other", "hello"),
        "http://hello.other.localhost:8080"
    );
    assert_eq!(
        e.tag_uri("local", "hello", "green"),
        "http://green---hello.localhost:8080"
    );
    assert_eq!(
        e.tag_uri("other", "hello", "green"),
        "http://green---hello.other.localhost:8080"
    );
    assert_eq!(e.service_host("local", "hello"), "hello.localhost");
    assert_eq!(
        e.parse_host("green---hello.localhost:8080"),
        Some((None, "hello", Some("green")))
    );
    let tls = Endpoint {
        scheme: "https".into(),
        ..Endpoint::new("local", "run.example.com", 8443)
    };
    assert_eq!(
        tls.service_uri("local", "hello"),
        "https://hello.run.example.com:8443"
    );
}

#[test]
fn revisions_are_made_of_the_service_template() {
    let mut s: Service = json::from_value(json!({
        "name": "projects/local/locations/local/services/hello",
        "launchStage": "BETA",
        "template": {
            "revision": "hello-blue",
            "labels": {"color": "blue"},
            "containers": [{"image": "img", "env": [{"name": "A", "value": "1"}]}],
            "sessionAffinity": true,
            "executionEnvironment": 1
        }
    }))
    .unwrap();
    apply_service_defaults(&mut s);
    let id = revision_id_for_template("hello", 1, s.template.as_ref().unwrap());
    let r = Revision::from_service(&s, &id);
    assert_eq!(
        r.name,
        "projects/local/locations/local/services/hello/revisions/hello-blue"
    );
    assert_eq!(r.id(), "hello-blue");
    assert_eq!(r.name.parse::<RevisionName>().unwrap().service, "hello");
    let v = json::to_value(&r, EnumEncoding::Name);
    assert_eq!(
        v["service"],
        "projects/local/locations/local/services/hello"
    );
    assert_eq!(v["launchStage"], "BETA");
    assert_eq!(v["labels"], json!({"color": "blue"}));
    assert_eq!(v["maxInstanceRequestConcurrency"], 80);
    assert_eq!(v["timeout"], "300s");
    assert_eq!(v["scaling"], json!({"maxInstanceCount": 100}));
    assert_eq!(v["executionEnvironment"], "EXECUTION_ENVIRONMENT_GEN1");
    assert_eq!(v["sessionAffinity"], true);
    assert_eq!(
        v["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}])
    );
    assert_eq!(
        v["containers"][0]["ports"],
        json!([{"name": "http1", "containerPort": 8080}])
    );
}
