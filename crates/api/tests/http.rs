//! The REST handlers end to end over a `MemStore`, requests sent with `oneshot`.

use std::sync::Arc;
use std::time::Duration;

use api::http::{complete_operation, router, ApiState, OPERATION_KIND, REVISION_KIND};
use api::naming::Endpoint;
use api::status::Status;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use store::{MemStore, Store};
use tower::ServiceExt;

const LOC: &str = "/v2/projects/local/locations/local";

struct Api {
    app: Router,
    store: Arc<MemStore>,
    state: ApiState,
}

impl Api {
    fn new() -> Api {
        let store = Arc::new(MemStore::new());
        let state = ApiState::new(
            store.clone(),
            "local",
            Endpoint::new("local", "localhost", 8080),
        );
        Api {
            app: router(state.clone()),
            store,
            state,
        }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let body = match body {
            Some(v) => Body::from(v.to_string()),
            None => Body::empty(),
        };
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, value)
    }

    async fn ok(&self, method: &str, uri: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, uri, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {value:#}");
        value
    }

    /// Creates a service and returns its operation.
    async fn create(&self, id: &str, image: &str) -> Value {
        self.ok(
            "POST",
            &format!("{LOC}/services?serviceId={id}"),
            Some(service_body(image)),
        )
        .await
    }

    fn count(&self, kind: &str) -> usize {
        self.store.list(kind, "", 1000, None).unwrap().records.len()
    }
}

fn service_body(image: &str) -> Value {
    json!({"template": {"containers": [{"image": image}]}})
}

fn error_of(v: &Value) -> (&str, Vec<String>) {
    let e = &v["error"];
    let fields = e["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .flat_map(|d| d["fieldViolations"].as_array().cloned().unwrap_or_default())
                .map(|f| f["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    (e["status"].as_str().unwrap_or(""), fields)
}

#[tokio::test]
async fn service_lifecycle() {
    let api = Api::new();

    // Create.
    let op = api.create("hello", "img:1").await;
    let op_name = op["name"].as_str().unwrap().to_string();
    assert!(
        op_name.starts_with("projects/local/locations/local/operations/"),
        "{op_name}"
    );
    assert_eq!(op["done"], Value::Null, "running: {op:#}");
    let meta = &op["metadata"];
    assert_eq!(
        meta["@type"],
        "type.googleapis.com/google.cloud.run.v2.Service"
    );
    assert_eq!(
        meta["name"],
        "projects/local/locations/local/services/hello"
    );
    assert_eq!(meta["generation"], "1");
    assert_eq!(meta["reconciling"], true);
    assert_eq!(meta["uri"], "http://hello.localhost:8080");
    assert_eq!(meta["terminalCondition"]["type"], "Ready");
    assert_eq!(meta["terminalCondition"]["state"], "CONDITION_PENDING");
    let rev1 = meta["latestCreatedRevision"].as_str().unwrap().to_string();
    let rev1_id = rev1.rsplit('/').next().unwrap().to_string();
    assert!(rev1_id.starts_with("hello-00001-"), "{rev1_id}");
    assert_eq!(rev1_id.len(), "hello-00001-abc".len());
    // Defaults applied.
    let c = &meta["template"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["cpu"], "1");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(meta["template"]["maxInstanceRequestConcurrency"], 80);
    assert_eq!(
        meta["traffic"][0]["type"],
        "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    );

    // Get.
    let svc = api.ok("GET", &format!("{LOC}/services/hello"), None).await;
    assert_eq!(svc["uid"], meta["uid"]);
    assert!(svc["etag"].as_str().unwrap().len() > 2);
    assert!(svc.get("@type").is_none());

    // The revision exists.
    let rev = api
        .ok(
            "GET",
            &format!("{LOC}/services/hello/revisions/{rev1_id}"),
            None,
        )
        .await;
    assert_eq!(
        rev["service"],
        "projects/local/locations/local/services/hello"
    );
    assert_eq!(rev["containers"][0]["image"], "img:1");
    assert_eq!(rev["reconciling"], true);

    // More services, listed in pages.
    api.create("alpha", "img:a").await;
    api.create("zulu", "img:z").await;
    let page1 = api
        .ok("GET", &format!("{LOC}/services?pageSize=2"), None)
        .await;
    let names: Vec<&str> = page1["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "projects/local/locations/local/services/alpha",
            "projects/local/locations/local/services/hello"
        ]
    );
    let token = page1["nextPageToken"].as_str().unwrap();
    let page2 = api
        .ok(
            "GET",
            &format!("{LOC}/services?pageSize=2&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(page2["services"].as_array().unwrap().len(), 1);
    assert_eq!(
        page2["services"][0]["name"],
        "projects/local/locations/local/services/zulu"
    );
    assert!(page2.get("nextPageToken").is_none());
    let (status, _) = api
        .call("GET", &format!("{LOC}/services?pageToken=garbage!"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Patch the template: generation 2, a new revision.
    let op2 = api
        .ok(
            "PATCH",
            &format!("{LOC}/services/hello"),
            Some(service_body("img:2")),
        )
        .await;
    let meta2 = &op2["metadata"];
    assert_eq!(meta2["generation"], "2");
    assert_eq!(meta2["uid"], meta["uid"]);
    assert_eq!(meta2["createTime"], meta["createTime"]);
    let rev2 = meta2["latestCreatedRevision"].as_str().unwrap();
    let rev2_id = rev2.rsplit('/').next().unwrap();
    assert!(rev2_id.starts_with("hello-00002-"), "{rev2_id}");
    assert_ne!(meta2["etag"], meta["etag"]);

    // Patch with a mask: labels only, no new revision.
    let op3 = api
        .ok(
            "PATCH",
            &format!("{LOC}/services/hello?updateMask=labels"),
            Some(json!({"labels": {"team": "a"}, "template": {"containers": [{"image": "ignored"}]}})),
        )
        .await;
    assert_eq!(op3["metadata"]["generation"], "3");
    assert_eq!(op3["metadata"]["labels"]["team"], "a");
    assert_eq!(op3["metadata"]["latestCreatedRevision"], rev2);
    assert_eq!(
        op3["metadata"]["template"]["containers"][0]["image"],
        "img:2"
    );
    // A mask into the template.
    let op4 = api
        .ok(
            "PATCH",
            &format!("{LOC}/services/hello?updateMask=template.scaling.maxInstanceCount"),
            Some(json!({"template": {"scaling": {"maxInstanceCount": 7}}})),
        )
        .await;
    assert_eq!(op4["metadata"]["generation"], "4");
    assert_eq!(
        op4["metadata"]["template"]["scaling"]["maxInstanceCount"],
        7
    );
    assert_eq!(
        op4["metadata"]["template"]["containers"][0]["image"],
        "img:2"
    );
    let rev4 = op4["metadata"]["latestCreatedRevision"].as_str().unwrap();
    assert!(rev4.rsplit('/').next().unwrap().starts_with("hello-00004-"));
    // An update that changes nothing: done at once, same generation.
    let svc4 = api.ok("GET", &format!("{LOC}/services/hello"), None).await;
    let op5 = api
        .ok(
            "PATCH",
            &format!("{LOC}/services/hello"),
            Some(svc4.clone()),
        )
        .await;
    assert_eq!(op5["done"], true);
    assert_eq!(op5["response"]["generation"], "4");
    assert_eq!(op5["response"]["etag"], svc4["etag"]);

    // Revisions of hello, and of every service with `-`.
    let revs = api
        .ok("GET", &format!("{LOC}/services/hello/revisions"), None)
        .await;
    assert_eq!(revs["revisions"].as_array().unwrap().len(), 3);
    let all = api
        .ok(
            "GET",
            &format!("{LOC}/services/-/revisions?pageSize=2"),
            None,
        )
        .await;
    assert_eq!(all["revisions"].as_array().unwrap().len(), 2);
    let token = all["nextPageToken"].as_str().unwrap();
    let rest = api
        .ok(
            "GET",
            &format!("{LOC}/services/-/revisions?pageSize=10&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(rest["revisions"].as_array().unwrap().len(), 3);

    // Operations: get, list, wait until the controller completes it.
    let got = api.ok("GET", &format!("/v2/{op_name}"), None).await;
    assert_eq!(got["name"], op_name.as_str());
    let ops = api.ok("GET", &format!("{LOC}/operations"), None).await;
    assert_eq!(ops["operations"].as_array().unwrap().len(), 7);
    let started = std::time::Instant::now();
    let waited = api
        .ok(
            "POST",
            &format!("/v2/{op_name}:wait"),
            Some(json!({"timeout": "0.2s"})),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(waited["done"], Value::Null);

    let store = api.store.clone();
    let name = op_name.clone();
    let mut ready = svc.clone();
    ready["reconciling"] = json!(false);
    let completer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        complete_operation(&*store, &name, Ok(ready)).unwrap()
    });
    let waited = api
        .ok(
            "POST",
            &format!("/v2/{op_name}:wait"),
            Some(json!({"timeout": "10s"})),
        )
        .await;
    completer.await.unwrap();
    assert_eq!(waited["done"], true);
    assert_eq!(
        waited["response"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Service"
    );
    assert_eq!(
        waited["response"]["name"],
        "projects/local/locations/local/services/hello"
    );
    assert!(waited.get("error").is_none());

    // A failed operation carries its error.
    let failed = complete_operation(
        &*api.store,
        op2["name"].as_str().unwrap(),
        Err(Status::failed_precondition("image not found")),
    )
    .unwrap();
    assert!(failed.done);
    let got = api
        .ok(
            "GET",
            &format!("/v2/{}", op2["name"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got["error"]["code"], 9);
    assert_eq!(got["error"]["message"], "image not found");

    // Deleting a revision that serves traffic is refused; an old one is not.
    let latest_id = rev4.rsplit('/').next().unwrap();
    let (status, body) = api
        .call(
            "DELETE",
            &format!("{LOC}/services/hello/revisions/{latest_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert_eq!(error_of(&body).0, "FAILED_PRECONDITION");
    let del = api
        .ok(
            "DELETE",
            &format!("{LOC}/services/hello/revisions/{rev1_id}"),
            None,
        )
        .await;
    assert_eq!(del["done"], true);
    assert_eq!(
        del["response"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Revision"
    );
    assert!(del["response"]["deleteTime"].is_string());
    let (status, _) = api
        .call(
            "GET",
            &format!("{LOC}/services/hello/revisions/{rev1_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete the service: its revisions go with it.
    let before = api.count(REVISION_KIND);
    let del = api
        .ok("DELETE", &format!("{LOC}/services/hello"), None)
        .await;
    assert_eq!(del["done"], true);
    assert!(del["response"]["deleteTime"].is_string());
    assert_eq!(api.count(REVISION_KIND), before - 2);
    let (status, body) = api
        .call("GET", &format!("{LOC}/services/hello"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    let del_op = api
        .ok(
            "GET",
            &format!("/v2/{}", del["name"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(del_op["done"], true);

    // Deleting an operation.
    let (status, body) = api.call("DELETE", &format!("/v2/{op_name}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
    let (status, _) = api.call("GET", &format!("/v2/{op_name}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mutations_poke_the_reconciler() {
    let api = Api::new();
    let changed = api.state.changed.clone();
    api.create("hello", "img").await;
    // notify_one keeps a permit for a waiter that comes later.
    tokio::time::timeout(Duration::from_secs(1), changed.notified())
        .await
        .expect("changed was poked");
}

#[tokio::test]
async fn validate_only_writes_nothing() {
    let api = Api::new();
    let op = api
        .ok(
            "POST",
            &format!("{LOC}/services?serviceId=hello&validateOnly=true"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!(op["done"], true);
    assert_eq!(
        op["response"]["name"],
        "projects/local/locations/local/services/hello"
    );
    assert_eq!(api.store.revision().unwrap(), 0);

    api.create("hello", "img").await;
    let rev = api.store.revision().unwrap();
    let op = api
        .ok(
            "PATCH",
            &format!("{LOC}/services/hello?validateOnly=true"),
            Some(service_body("img:2")),
        )
        .await;
    assert_eq!(op["response"]["generation"], "2");
    let op = api
        .ok(
            "DELETE",
            &format!("{LOC}/services/hello?validate_only=true"),
            None,
        )
        .await;
    assert_eq!(op["done"], true);
    assert_eq!(api.store.revision().unwrap(), rev);
    let svc = api.ok("GET", &format!("{LOC}/services/hello"), None).await;
    assert_eq!(svc["generation"], "1");

    // A validate-only create of an existing service is still a conflict.
    let (status, _) = api
        .call(
            "POST",
            &format!("{LOC}/services?serviceId=hello&validateOnly=true"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn duplicate_create_is_409() {
    let api = Api::new();
    api.create("hello", "img").await;
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/services?serviceId=hello"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_of(&body).0, "ALREADY_EXISTS");
    assert_eq!(body["error"]["code"], 409);
}

#[tokio::test]
async fn location_must_be_the_region() {
    let api = Api::new();
    for (method, uri) in [
        (
            "POST",
            "/v2/projects/local/locations/us-central1/services?serviceId=hello",
        ),
        ("GET", "/v2/projects/local/locations/us-central1/services"),
        (
            "GET",
            "/v2/projects/local/locations/us-central1/services/hello",
        ),
        ("GET", "/v2/projects/local/locations/us-central1/operations"),
    ] {
        let (status, body) = api.call(method, uri, Some(service_body("img"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body:#}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("us-central1"));
    }
    assert_eq!(api.store.revision().unwrap(), 0);
    // A malformed project is a bad request.
    let (status, _) = api
        .call(
            "GET",
            "/v2/projects/Bad_Project/locations/local/services",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Other projects are namespaces of their own, with their own host names.
    let op = api
        .ok(
            "POST",
            "/v2/projects/other/locations/local/services?serviceId=hello",
            Some(service_body("img")),
        )
        .await;
    assert_eq!(op["metadata"]["uri"], "http://hello.other.localhost:8080");
    // Unknown paths get the error envelope too.
    let (status, body) = api.call("GET", "/v1/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn bad_fields_are_named() {
    let api = Api::new();
    // Validation.
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/services?serviceId=hello"),
            Some(json!({"template": {"containers": [{"image": "img", "resources": {"limits": {"cpu": "3"}}}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    let (code, fields) = error_of(&body);
    assert_eq!(code, "INVALID_ARGUMENT");
    assert_eq!(
        fields,
        ["service.template.containers[0].resources.limits.cpu"]
    );
    // Parsing.
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/services?serviceId=hello"),
            Some(json!({"template": {"containers": [{"image": "img", "ports": [{"containerPort": "x"}]}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(&body).1,
        ["service.template.containers[0].ports[0].containerPort"]
    );
    // No template.
    let (status, body) = api
        .call("POST", &format!("{LOC}/services?serviceId=hello"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, ["service.template"]);
    // The service id.
    for uri in [
        format!("{LOC}/services"),
        format!("{LOC}/services?serviceId=Hello"),
    ] {
        let (status, body) = api.call("POST", &uri, Some(service_body("img"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&body).1, ["serviceId"]);
    }
    // Traffic to a revision that does not exist.
    api.create("hello", "img").await;
    let (status, body) = api
        .call(
            "PATCH",
            &format!("{LOC}/services/hello"),
            Some(json!({
                "template": {"containers": [{"image": "img"}]},
                "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "hello-nope", "percent": 100}],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert_eq!(error_of(&body).1, ["service.traffic[0].revision"]);
    // An output-only field in the mask.
    let (status, body) = api
        .call(
            "PATCH",
            &format!("{LOC}/services/hello?updateMask=uri"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, ["updateMask"]);
    // Nothing was written by the failures.
    assert_eq!(api.count(REVISION_KIND), 1);
    assert_eq!(api.count(OPERATION_KIND), 1);
}

#[tokio::test]
async fn enums_as_ints_in_and_out() {
    let api = Api::new();
    let op = api
        .ok(
            "POST",
            &format!("{LOC}/services?serviceId=hello&$alt=json;enum-encoding=int"),
            Some(json!({
                "ingress": 2,
                "launchStage": "BETA",
                "template": {"containers": [{"image": "img"}], "executionEnvironment": 1},
                "traffic": [{"type": 1, "percent": 100}],
            })),
        )
        .await;
    let meta = &op["metadata"];
    assert_eq!(meta["ingress"], 2);
    assert_eq!(meta["launchStage"], 3);
    assert_eq!(meta["template"]["executionEnvironment"], 1);
    assert_eq!(meta["traffic"][0]["type"], 1);
    assert_eq!(meta["terminalCondition"]["state"], 1);
    let svc = api
        .ok(
            "GET",
            &format!("{LOC}/services/hello?%24alt=json%3Benum-encoding%3Dint"),
            None,
        )
        .await;
    assert_eq!(svc["ingress"], 2);
    let svc = api.ok("GET", &format!("{LOC}/services/hello"), None).await;
    assert_eq!(svc["ingress"], "INGRESS_TRAFFIC_INTERNAL_ONLY");
    assert_eq!(svc["launchStage"], "BETA");
    // Errors carry their details with int enums too; the envelope is the same.
    let (_, body) = api
        .call(
            "GET",
            &format!("{LOC}/services/nope?$alt=json;enum-encoding=int"),
            None,
        )
        .await;
    assert_eq!(body["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn etags_are_checked() {
    let api = Api::new();
    api.create("hello", "img").await;
    let svc = api.ok("GET", &format!("{LOC}/services/hello"), None).await;
    let etag = svc["etag"].as_str().unwrap().to_string();

    // A stale etag on update.
    let mut stale = svc.clone();
    stale["etag"] = json!("\"0123\"");
    stale["template"]["containers"][0]["image"] = json!("img:2");
    let (status, body) = api
        .call("PATCH", &format!("{LOC}/services/hello"), Some(stale))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_of(&body).0, "ABORTED");

    // The right one.
    let mut fresh = svc.clone();
    fresh["template"]["containers"][0]["image"] = json!("img:2");
    let op = api
        .ok("PATCH", &format!("{LOC}/services/hello"), Some(fresh))
        .await;
    let new_etag = op["metadata"]["etag"].as_str().unwrap().to_string();
    assert_ne!(new_etag, etag);

    // Delete with the old etag, then the new one.
    let enc = |e: &str| e.replace('"', "%22");
    let (status, body) = api
        .call(
            "DELETE",
            &format!("{LOC}/services/hello?etag={}", enc(&etag)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_of(&body).0, "ABORTED");
    api.ok(
        "DELETE",
        &format!("{LOC}/services/hello?etag={}", enc(&new_etag)),
        None,
    )
    .await;
}

#[tokio::test]
async fn update_of_a_missing_service() {
    let api = Api::new();
    let (status, body) = api
        .call(
            "PATCH",
            &format!("{LOC}/services/hello"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"].as_str().unwrap().contains("hello"));
    let op = api
        .ok(
            "PATCH",
            &format!("{LOC}/services/hello?allowMissing=true"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!(op["metadata"]["generation"], "1");
    // An explicit revision name that is taken is a conflict.
    let op = api
        .ok(
            "PATCH",
            &format!("{LOC}/services/hello"),
            Some(json!({"template": {"revision": "hello-blue", "containers": [{"image": "a"}]}})),
        )
        .await;
    assert!(op["metadata"]["latestCreatedRevision"]
        .as_str()
        .unwrap()
        .ends_with("/revisions/hello-blue"));
    let (status, body) = api
        .call(
            "PATCH",
            &format!("{LOC}/services/hello"),
            Some(json!({"template": {"revision": "hello-blue", "containers": [{"image": "b"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    assert_eq!(error_of(&body).0, "ALREADY_EXISTS");
}

#[tokio::test]
async fn wait_on_a_done_operation_returns_at_once() {
    let api = Api::new();
    let op = api.create("hello", "img").await;
    let name = op["name"].as_str().unwrap();
    complete_operation(&*api.store, name, Ok(op["metadata"].clone())).unwrap();
    let started = std::time::Instant::now();
    let waited = api
        .ok("POST", &format!("/v2/{name}:wait"), Some(json!({})))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(waited["done"], true);
    let (status, _) = api
        .call(
            "POST",
            &format!("{LOC}/operations/nope:wait"),
            Some(json!({"timeout": "1s"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call("POST", &format!("/v2/{name}:cancel"), None).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
}
