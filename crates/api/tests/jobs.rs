//! The Jobs, Executions and Tasks REST handlers end to end over a `MemStore`, requests
//! sent with `oneshot`.

use std::sync::Arc;
use std::time::Duration;

use api::http::{
    complete_operation, router, ApiState, EXECUTION_KIND, JOB_KIND, OPERATION_KIND, TASK_KIND,
};
use api::json::{self, EnumEncoding};
use api::naming::Endpoint;
use api::{Condition, ConditionState, Execution, Task};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use store::{MemStore, Precondition, Store};
use tower::ServiceExt;

const LOC: &str = "/v2/projects/local/locations/local";
const JOB: &str = "projects/local/locations/local/jobs/batch";

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

    /// Creates a job and returns its operation.
    async fn create(&self, id: &str, body: Value) -> Value {
        self.ok("POST", &format!("{LOC}/jobs?jobId={id}"), Some(body))
            .await
    }

    /// Runs a job and returns its operation.
    async fn run(&self, id: &str, body: Value) -> Value {
        self.ok("POST", &format!("{LOC}/jobs/{id}:run"), Some(body))
            .await
    }

    fn count(&self, kind: &str) -> usize {
        self.store.list(kind, "", 1000, None).unwrap().records.len()
    }

    fn execution(&self, name: &str) -> (Execution, u64) {
        let r = self.store.get(EXECUTION_KIND, name).unwrap().unwrap();
        (json::from_value(r.doc).unwrap(), r.revision)
    }

    /// The controller's part: writes the tasks of an execution.
    fn write_tasks(&self, execution_name: &str) -> Vec<Task> {
        let (e, _) = self.execution(execution_name);
        (0..e.task_count)
            .map(|i| {
                let t = Task::for_execution(&e, i);
                self.store
                    .put(
                        TASK_KIND,
                        &t.name,
                        json::to_value(&t, EnumEncoding::Name),
                        Precondition::Absent,
                    )
                    .unwrap();
                t
            })
            .collect()
    }

    /// The controller's part: the execution ended with `state`.
    fn finish(&self, execution_name: &str, state: ConditionState) {
        let (mut e, rev) = self.execution(execution_name);
        e.conditions.retain(|c| c.kind != "Completed");
        e.conditions.insert(0, Condition::new("Completed", state));
        e.reconciling = false;
        e.etag = e.compute_etag();
        self.store
            .put(
                EXECUTION_KIND,
                execution_name,
                json::to_value(&e, EnumEncoding::Name),
                Precondition::Revision(rev),
            )
            .unwrap();
    }
}

fn job_body(image: &str) -> Value {
    json!({"template": {"template": {"containers": [{"image": image}]}}})
}

fn two_container_body() -> Value {
    json!({"template": {"taskCount": 4, "parallelism": 2, "template": {
        "containers": [
            {"name": "main", "image": "img:1", "args": ["a", "b"],
             "env": [{"name": "KEEP", "value": "1"}, {"name": "MODE", "value": "slow"}]},
            {"name": "side", "image": "img:side", "args": ["s"]}
        ],
        "maxRetries": 1
    }}})
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

fn names(list: &Value, member: &str) -> Vec<String> {
    list[member]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn enc(etag: &Value) -> String {
    etag.as_str().unwrap().replace('"', "%22")
}

#[tokio::test]
async fn job_lifecycle() {
    let api = Api::new();

    // Create: done at once, the job as response and metadata.
    let op = api.create("batch", job_body("img:1")).await;
    assert!(op["name"]
        .as_str()
        .unwrap()
        .starts_with("projects/local/locations/local/operations/"));
    assert_eq!(op["done"], true, "{op:#}");
    assert!(op.get("error").is_none());
    let job = &op["response"];
    assert_eq!(job["@type"], "type.googleapis.com/google.cloud.run.v2.Job");
    assert_eq!(op["metadata"], op["response"]);
    assert_eq!(job["name"], JOB);
    assert_eq!(job["generation"], "1");
    assert_eq!(job["observedGeneration"], "1");
    assert_eq!(job["launchStage"], "GA");
    assert_eq!(job["terminalCondition"]["type"], "Ready");
    assert_eq!(job["terminalCondition"]["state"], "CONDITION_SUCCEEDED");
    assert!(job.get("reconciling").is_none());
    assert_eq!(job["uid"].as_str().unwrap().len(), 36);
    // Defaults applied.
    assert_eq!(job["template"]["taskCount"], 1);
    let task = &job["template"]["template"];
    assert_eq!(task["maxRetries"], 3);
    assert_eq!(task["timeout"], "600s");
    assert_eq!(
        task["containers"][0]["resources"],
        json!({"limits": {"cpu": "1", "memory": "512Mi"}})
    );
    assert!(task["containers"][0].get("ports").is_none());
    // The operation is stored, done.
    let stored = api
        .ok(
            "GET",
            &format!("/v2/{}", op["name"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(stored["done"], true);

    // Get.
    let got = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(got["uid"], job["uid"]);
    assert!(got["etag"].as_str().unwrap().len() > 2);
    assert!(got.get("@type").is_none());
    let (status, body) = api.call("GET", &format!("{LOC}/jobs/nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kind 'JOB'"));

    // A duplicate is a conflict.
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/jobs?jobId=batch"),
            Some(job_body("img")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_of(&body).0, "ALREADY_EXISTS");

    // List in pages.
    api.create("alpha", job_body("img:a")).await;
    api.create("zulu", job_body("img:z")).await;
    let page1 = api.ok("GET", &format!("{LOC}/jobs?pageSize=2"), None).await;
    assert_eq!(
        names(&page1, "jobs"),
        [
            "projects/local/locations/local/jobs/alpha",
            "projects/local/locations/local/jobs/batch"
        ]
    );
    let token = page1["nextPageToken"].as_str().unwrap();
    let page2 = api
        .ok(
            "GET",
            &format!("{LOC}/jobs?pageSize=2&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(
        names(&page2, "jobs"),
        ["projects/local/locations/local/jobs/zulu"]
    );
    assert!(page2.get("nextPageToken").is_none());

    // Patch: generation 2, still done at once.
    let op2 = api
        .ok(
            "PATCH",
            &format!("{LOC}/jobs/batch"),
            Some(job_body("img:2")),
        )
        .await;
    assert_eq!(op2["done"], true);
    let job2 = &op2["response"];
    assert_eq!(job2["generation"], "2");
    assert_eq!(job2["observedGeneration"], "2");
    assert_eq!(job2["uid"], job["uid"]);
    assert_eq!(job2["createTime"], job["createTime"]);
    assert_eq!(
        job2["template"]["template"]["containers"][0]["image"],
        "img:2"
    );
    assert_ne!(job2["etag"], got["etag"]);

    // A mask: labels only.
    let op3 = api
        .ok(
            "PATCH",
            &format!("{LOC}/jobs/batch?updateMask=labels"),
            Some(json!({"labels": {"team": "a"}, "template": {"template": {"containers": [{"image": "ignored"}]}}})),
        )
        .await;
    assert_eq!(op3["response"]["generation"], "3");
    assert_eq!(op3["response"]["labels"]["team"], "a");
    assert_eq!(
        op3["response"]["template"]["template"]["containers"][0]["image"],
        "img:2"
    );
    // A mask into the template, snake_case.
    let op4 = api
        .ok(
            "PATCH",
            &format!("{LOC}/jobs/batch?update_mask=template.task_count"),
            Some(json!({"template": {"taskCount": 7}})),
        )
        .await;
    assert_eq!(op4["response"]["template"]["taskCount"], 7);
    assert_eq!(
        op4["response"]["template"]["template"]["containers"][0]["image"],
        "img:2"
    );
    // An output-only field in the mask.
    let (status, body) = api
        .call(
            "PATCH",
            &format!("{LOC}/jobs/batch?updateMask=executionCount"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, ["updateMask"]);
    // An update that changes nothing: same generation, etag and record.
    let current = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    let revision = api.store.get(JOB_KIND, JOB).unwrap().unwrap().revision;
    let op5 = api
        .ok("PATCH", &format!("{LOC}/jobs/batch"), Some(current.clone()))
        .await;
    assert_eq!(op5["done"], true);
    assert_eq!(op5["response"]["generation"], "4");
    assert_eq!(op5["response"]["etag"], current["etag"]);
    assert_eq!(
        api.store.get(JOB_KIND, JOB).unwrap().unwrap().revision,
        revision
    );

    // Delete.
    let del = api.ok("DELETE", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(del["done"], true);
    assert_eq!(
        del["response"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Job"
    );
    assert!(del["response"]["deleteTime"].is_string());
    let (status, _) = api.call("GET", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(api.count(JOB_KIND), 2);
}

#[tokio::test]
async fn update_of_a_missing_job() {
    let api = Api::new();
    let (status, body) = api
        .call("PATCH", &format!("{LOC}/jobs/batch"), Some(job_body("img")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:#}");
    let op = api
        .ok(
            "PATCH",
            &format!("{LOC}/jobs/batch?allowMissing=true"),
            Some(job_body("img")),
        )
        .await;
    assert_eq!(op["response"]["generation"], "1");
    assert_eq!(api.count(JOB_KIND), 1);
}

#[tokio::test]
async fn bad_fields_are_named() {
    let api = Api::new();
    let cases = [
        (
            format!("{LOC}/jobs?jobId=batch"),
            json!({"template": {"template": {"containers": [{"image": "img", "resources": {"limits": {"cpu": "3"}}}]}}}),
            vec!["job.template.template.containers[0].resources.limits.cpu"],
        ),
        (
            format!("{LOC}/jobs?jobId=batch"),
            json!({"template": {"taskCount": "lots", "template": {"containers": [{"image": "img"}]}}}),
            vec!["job.template.taskCount"],
        ),
        (
            format!("{LOC}/jobs?jobId=batch"),
            json!({"template": {"taskCount": 2, "parallelism": 3, "template": {"maxRetries": 11, "containers": [{"image": "img"}]}}}),
            vec![
                "job.template.parallelism",
                "job.template.template.maxRetries",
            ],
        ),
        (
            format!("{LOC}/jobs?jobId=batch"),
            json!({}),
            vec!["job.template"],
        ),
        (format!("{LOC}/jobs"), job_body("img"), vec!["jobId"]),
        (
            format!("{LOC}/jobs?jobId=Batch"),
            job_body("img"),
            vec!["jobId"],
        ),
    ];
    for (uri, body, want) in cases {
        let (status, got) = api.call("POST", &uri, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {got:#}");
        let (code, fields) = error_of(&got);
        assert_eq!(code, "INVALID_ARGUMENT");
        assert_eq!(fields, want, "{uri}");
        assert_eq!(got["error"]["code"], 400);
    }
    assert_eq!(api.store.revision().unwrap(), 0, "nothing written");
    // Unknown verbs and the wrong region.
    api.create("batch", job_body("img")).await;
    let (status, _) = api
        .call("POST", &format!("{LOC}/jobs/batch:launch"), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let (status, _) = api
        .call("GET", &format!("{LOC}/jobs/batch:cancel"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let (status, body) = api
        .call("GET", "/v2/projects/local/locations/us-central1/jobs", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("us-central1"));
    let (status, _) = api
        .call("PUT", &format!("{LOC}/jobs/batch"), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
}

#[tokio::test]
async fn enums_as_ints_in_and_out() {
    let api = Api::new();
    let op = api
        .ok(
            "POST",
            &format!("{LOC}/jobs?jobId=batch&$alt=json;enum-encoding=int"),
            Some(json!({
                "launchStage": 3,
                "template": {"template": {"containers": [{"image": "img"}], "executionEnvironment": 1}}
            })),
        )
        .await;
    let job = &op["response"];
    assert_eq!(job["launchStage"], 3);
    assert_eq!(job["template"]["template"]["executionEnvironment"], 1);
    assert_eq!(job["terminalCondition"]["state"], 4);
    let got = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(got["launchStage"], "BETA");
    assert_eq!(
        got["template"]["template"]["executionEnvironment"],
        "EXECUTION_ENVIRONMENT_GEN1"
    );
    let run = api
        .ok(
            "POST",
            &format!("{LOC}/jobs/batch:run?%24alt=json%3Benum-encoding%3Dint"),
            Some(json!({})),
        )
        .await;
    let e = &run["metadata"];
    assert_eq!(e["launchStage"], 3);
    assert_eq!(e["conditions"][0]["state"], 1);
    let job = api
        .ok(
            "GET",
            &format!("{LOC}/jobs/batch?$alt=json;enum-encoding=int"),
            None,
        )
        .await;
    assert_eq!(job["latestCreatedExecution"]["completionStatus"], 4);
}

#[tokio::test]
async fn run_with_overrides_makes_the_execution_and_counts_it() {
    let api = Api::new();
    let created = api.create("batch", two_container_body()).await;
    let job_etag = created["response"]["etag"].clone();
    let changed = api.state.changed.clone();

    let op = api
        .run(
            "batch",
            json!({
                "etag": job_etag,
                "overrides": {
                    "containerOverrides": [
                        {"name": "main", "args": ["x"], "env": [{"name": "MODE", "value": "fast"}, {"name": "NEW", "value": "n"}]},
                        {"name": "side", "clearArgs": true}
                    ],
                    "taskCount": 3,
                    "timeout": "30s"
                }
            }),
        )
        .await;
    tokio::time::timeout(Duration::from_secs(1), changed.notified())
        .await
        .expect("changed was poked");
    // A running operation whose metadata is the execution.
    assert!(op.get("done").is_none(), "{op:#}");
    let e = &op["metadata"];
    assert_eq!(
        e["@type"],
        "type.googleapis.com/google.cloud.run.v2.Execution"
    );
    let e_name = e["name"].as_str().unwrap().to_string();
    let e_id = e_name
        .strip_prefix(&format!("{JOB}/executions/"))
        .unwrap()
        .to_string();
    assert_eq!(e_id.len(), "batch-x7k2p".len(), "{e_id}");
    assert!(e_id.starts_with("batch-"));
    assert_eq!(e["job"], "batch");
    assert_eq!(e["generation"], "1");
    assert_eq!(e["launchStage"], "GA");
    assert_eq!(e["taskCount"], 3);
    assert_eq!(e["parallelism"], 2);
    assert_eq!(e["reconciling"], true);
    assert_eq!(e["uid"].as_str().unwrap().len(), 36);
    assert!(e["createTime"].is_string());
    let conditions: Vec<(&str, &str)> = e["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Completed", "CONDITION_PENDING"),
            ("ResourcesAvailable", "CONDITION_PENDING")
        ]
    );
    let t = &e["template"];
    assert_eq!(t["timeout"], "30s");
    assert_eq!(t["maxRetries"], 1);
    assert_eq!(t["containers"][0]["args"], json!(["x"]));
    assert_eq!(
        t["containers"][0]["env"],
        json!([
            {"name": "KEEP", "value": "1"},
            {"name": "MODE", "value": "fast"},
            {"name": "NEW", "value": "n"}
        ])
    );
    assert!(t["containers"][1].get("args").is_none());
    assert_eq!(t["containers"][1]["image"], "img:side");

    // Stored as returned; the operation too.
    let got = api
        .ok("GET", &format!("{LOC}/jobs/batch/executions/{e_id}"), None)
        .await;
    let mut meta = e.clone();
    meta.as_object_mut().unwrap().remove("@type");
    assert_eq!(got, meta);
    let stored_op = api
        .ok(
            "GET",
            &format!("/v2/{}", op["name"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(stored_op.get("done").is_none());

    // The job counts it, and is otherwise unchanged (no new generation).
    let job = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(job["executionCount"], 1);
    assert_eq!(job["generation"], "1");
    assert_eq!(job["latestCreatedExecution"]["name"], e_name.as_str());
    assert_eq!(job["latestCreatedExecution"]["createTime"], e["createTime"]);
    assert_eq!(
        job["latestCreatedExecution"]["completionStatus"],
        "EXECUTION_PENDING"
    );
    assert_eq!(job["template"]["taskCount"], 4, "the job keeps its own");
    assert_ne!(job["etag"], job_etag);

    // A second run without overrides: the job's template as it is.
    let op2 = api.run("batch", json!({})).await;
    let e2 = &op2["metadata"];
    assert_ne!(e2["name"], e["name"]);
    assert_eq!(e2["taskCount"], 4);
    assert_eq!(e2["template"]["containers"][0]["args"], json!(["a", "b"]));
    assert_eq!(e2["template"]["timeout"], "600s");
    let job = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(job["executionCount"], 2);
    assert_eq!(job["latestCreatedExecution"]["name"], e2["name"]);
    assert_eq!(api.count(EXECUTION_KIND), 2);

    // The controller finishes the run with the execution.
    let mut finished = got.clone();
    finished["reconciling"] = json!(false);
    let done = complete_operation(&*api.store, op["name"].as_str().unwrap(), Ok(finished)).unwrap();
    assert!(done.done);
    let waited = api
        .ok(
            "POST",
            &format!("/v2/{}:wait", op["name"].as_str().unwrap()),
            Some(json!({"timeout": "1s"})),
        )
        .await;
    assert_eq!(waited["done"], true);
    assert_eq!(
        waited["response"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Execution"
    );
    assert_eq!(waited["response"]["name"], e_name.as_str());
}

#[tokio::test]
async fn run_refuses_bad_overrides_and_stale_etags() {
    let api = Api::new();
    api.create("batch", two_container_body()).await;
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/jobs/batch:run"),
            Some(json!({"overrides": {
                "containerOverrides": [{"name": "nope"}, {"args": ["x"]}, {"name": "main", "env": [{"name": "CLOUD_RUN_TASK_INDEX", "value": "1"}]}],
                "taskCount": 10001
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert_eq!(
        error_of(&body).1,
        [
            "overrides.containerOverrides[0].name",
            "overrides.containerOverrides[1].name",
            "overrides.containerOverrides[2].env[0].name",
            "overrides.taskCount",
        ]
    );
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/jobs/batch:run"),
            Some(json!({"overrides": {"taskCount": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, ["overrides.taskCount"]);
    // An override making parallelism exceed the task count lowers it instead.
    let op = api
        .run("batch", json!({"overrides": {"taskCount": 1}}))
        .await;
    assert_eq!(op["metadata"]["parallelism"], 1);
    // A stale etag.
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/jobs/batch:run"),
            Some(json!({"etag": "\"0123\""})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_of(&body).0, "ABORTED");
    // A missing job.
    let (status, _) = api
        .call("POST", &format!("{LOC}/jobs/nope:run"), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(api.count(EXECUTION_KIND), 1);
    assert_eq!(api.count(OPERATION_KIND), 2);
}

#[tokio::test]
async fn validate_only_writes_nothing() {
    let api = Api::new();
    let op = api
        .ok(
            "POST",
            &format!("{LOC}/jobs?jobId=batch&validateOnly=true"),
            Some(job_body("img")),
        )
        .await;
    assert_eq!(op["done"], true);
    assert_eq!(op["response"]["name"], JOB);
    assert_eq!(op["response"]["template"]["taskCount"], 1);
    assert_eq!(api.store.revision().unwrap(), 0);

    api.create("batch", job_body("img")).await;
    let run = api.run("batch", json!({})).await;
    let e_name = run["metadata"]["name"].as_str().unwrap().to_string();
    let e_id = e_name.rsplit('/').next().unwrap().to_string();
    let rev = api.store.revision().unwrap();

    let op = api
        .ok(
            "PATCH",
            &format!("{LOC}/jobs/batch?validateOnly=true"),
            Some(job_body("img:2")),
        )
        .await;
    assert_eq!(op["response"]["generation"], "2");
    let op = api
        .run(
            "batch",
            json!({"validateOnly": true, "overrides": {"taskCount": 5}}),
        )
        .await;
    assert_eq!(op["done"], true, "a validate-only run is answered done");
    assert_eq!(op["response"]["taskCount"], 5);
    let op = api
        .ok(
            "POST",
            &format!("{LOC}/jobs/batch/executions/{e_id}:cancel"),
            Some(json!({"validateOnly": true})),
        )
        .await;
    assert_eq!(op["done"], true);
    assert_eq!(
        op["response"]["conditions"][0]["executionReason"],
        "CANCELLING"
    );
    api.ok(
        "DELETE",
        &format!("{LOC}/jobs/batch/executions/{e_id}?validateOnly=true"),
        None,
    )
    .await;
    let op = api
        .ok(
            "DELETE",
            &format!("{LOC}/jobs/batch?validate_only=true"),
            None,
        )
        .await;
    assert_eq!(op["done"], true);
    assert_eq!(api.store.revision().unwrap(), rev, "nothing written");
    let job = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(job["generation"], "1");
    assert_eq!(job["executionCount"], 1);
    let e = api
        .ok("GET", &format!("{LOC}/jobs/batch/executions/{e_id}"), None)
        .await;
    assert_eq!(e["conditions"][0]["state"], "CONDITION_PENDING");

    // A validate-only create of an existing job is still a conflict.
    let (status, _) = api
        .call(
            "POST",
            &format!("{LOC}/jobs?jobId=batch&validateOnly=true"),
            Some(job_body("img")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn etags_are_checked() {
    let api = Api::new();
    api.create("batch", job_body("img")).await;
    let job = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    let etag = job["etag"].clone();

    let mut stale = job.clone();
    stale["etag"] = json!("\"0123\"");
    stale["template"]["template"]["containers"][0]["image"] = json!("img:2");
    let (status, body) = api
        .call("PATCH", &format!("{LOC}/jobs/batch"), Some(stale))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_of(&body).0, "ABORTED");

    let mut fresh = job.clone();
    fresh["template"]["template"]["containers"][0]["image"] = json!("img:2");
    let op = api
        .ok("PATCH", &format!("{LOC}/jobs/batch"), Some(fresh))
        .await;
    let new_etag = op["response"]["etag"].clone();
    assert_ne!(new_etag, etag);

    // Executions: delete and cancel check theirs.
    let run = api.run("batch", json!({})).await;
    let e_id = run["metadata"]["name"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let e_etag = run["metadata"]["etag"].clone();
    for (method, uri, body) in [
        (
            "DELETE",
            format!("{LOC}/jobs/batch/executions/{e_id}?etag=%220123%22"),
            None,
        ),
        (
            "POST",
            format!("{LOC}/jobs/batch/executions/{e_id}:cancel"),
            Some(json!({"etag": "\"0123\""})),
        ),
    ] {
        let (status, body) = api.call(method, &uri, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{uri}: {body:#}");
        assert_eq!(error_of(&body).0, "ABORTED");
    }
    let op = api
        .ok(
            "POST",
            &format!("{LOC}/jobs/batch/executions/{e_id}:cancel"),
            Some(json!({"etag": e_etag})),
        )
        .await;
    let cancelled_etag = op["metadata"]["etag"].clone();
    api.ok(
        "DELETE",
        &format!(
            "{LOC}/jobs/batch/executions/{e_id}?etag={}",
            enc(&cancelled_etag)
        ),
        None,
    )
    .await;

    // The job's delete: the etag before the run is stale now.
    let (status, body) = api
        .call(
            "DELETE",
            &format!("{LOC}/jobs/batch?etag={}", enc(&new_etag)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_of(&body).0, "ABORTED");
    let job = api.ok("GET", &format!("{LOC}/jobs/batch"), None).await;
    api.ok(
        "DELETE",
        &format!("{LOC}/jobs/batch?etag={}", enc(&job["etag"])),
        None,
    )
    .await;
}

#[tokio::test]
async fn executions_are_listed_per_job_and_across_jobs() {
    let api = Api::new();
    api.create("alpha", job_body("img")).await;
    api.create("batch", job_body("img")).await;
    for job in ["alpha", "alpha", "batch"] {
        api.run(job, json!({})).await;
    }
    let alpha = api
        .ok("GET", &format!("{LOC}/jobs/alpha/executions"), None)
        .await;
    let alpha_names = names(&alpha, "executions");
    assert_eq!(alpha_names.len(), 2);
    assert!(alpha_names
        .iter()
        .all(|n| n.starts_with("projects/local/locations/local/jobs/alpha/executions/alpha-")));
    let page1 = api
        .ok("GET", &format!("{LOC}/jobs/-/executions?pageSize=2"), None)
        .await;
    assert_eq!(names(&page1, "executions").len(), 2);
    let token = page1["nextPageToken"].as_str().unwrap();
    let page2 = api
        .ok(
            "GET",
            &format!("{LOC}/jobs/-/executions?pageSize=2&pageToken={token}"),
            None,
        )
        .await;
    let rest = names(&page2, "executions");
    assert_eq!(rest.len(), 1);
    assert!(rest[0].contains("/jobs/batch/executions/batch-"));
    assert!(page2.get("nextPageToken").is_none());
    let none = api
        .ok("GET", &format!("{LOC}/jobs/zulu/executions"), None)
        .await;
    assert_eq!(none, json!({}));
    let (status, body) = api
        .call("GET", &format!("{LOC}/jobs/Bad/executions"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, ["parent"]);
    let (status, body) = api
        .call(
            "GET",
            &format!("{LOC}/jobs/alpha/executions/alpha-nope1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kind 'EXECUTION'"));
}

#[tokio::test]
async fn cancel_marks_the_execution_cancelling_unless_it_ended() {
    let api = Api::new();
    api.create("batch", job_body("img")).await;
    let run = api.run("batch", json!({})).await;
    let e_name = run["metadata"]["name"].as_str().unwrap().to_string();
    let e_id = e_name.rsplit('/').next().unwrap().to_string();

    let op = api
        .ok(
            "POST",
            &format!("{LOC}/jobs/batch/executions/{e_id}:cancel"),
            Some(json!({})),
        )
        .await;
    assert!(op.get("done").is_none(), "running: {op:#}");
    let meta = &op["metadata"];
    assert_eq!(
        meta["@type"],
        "type.googleapis.com/google.cloud.run.v2.Execution"
    );
    assert_eq!(meta["reconciling"], true);
    let completed = &meta["conditions"][0];
    assert_eq!(completed["type"], "Completed");
    assert_eq!(completed["state"], "CONDITION_RECONCILING");
    assert_eq!(completed["executionReason"], "CANCELLING");
    assert_eq!(
        meta["conditions"][1]["type"], "ResourcesAvailable",
        "the other conditions stay"
    );
    let got = api
        .ok("GET", &format!("{LOC}/jobs/batch/executions/{e_id}"), None)
        .await;
    assert_eq!(got["conditions"][0], *completed);
    assert_eq!(got["etag"], meta["etag"]);
    // The cancel's operation is stored, running, for the controller to finish.
    let stored = api
        .ok(
            "GET",
            &format!("/v2/{}", op["name"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(stored.get("done").is_none());
    let (stored_exec, _) = api.execution(&e_name);
    assert_eq!(
        stored_exec.completed_condition().unwrap().execution_reason,
        Some(api::condition::ExecutionReason::Cancelling)
    );

    // Once the execution ended, a cancel is refused.
    api.finish(&e_name, ConditionState::Failed);
    let (status, body) = api
        .call(
            "POST",
            &format!("{LOC}/jobs/batch/executions/{e_id}:cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert_eq!(error_of(&body).0, "FAILED_PRECONDITION");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already completed"));
    let run2 = api.run("batch", json!({})).await;
    let e2 = run2["metadata"]["name"].as_str().unwrap().to_string();
    api.finish(&e2, ConditionState::Succeeded);
    let (status, _) = api
        .call("POST", &format!("/v2/{e2}:cancel"), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Other verbs, and missing executions.
    let (status, _) = api
        .call("POST", &format!("/v2/{e2}:retry"), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let (status, _) = api
        .call(
            "POST",
            &format!("{LOC}/jobs/batch/executions/batch-nope1:cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tasks_are_listed_and_got() {
    let api = Api::new();
    api.create(
        "batch",
        json!({"template": {"taskCount": 3, "template": {"containers": [{"image": "img"}], "maxRetries": 0}}}),
    )
    .await;
    let e1 = api.run("batch", json!({})).await["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let e2 = api
        .run("batch", json!({"overrides": {"taskCount": 2}}))
        .await["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let tasks = api.write_tasks(&e1);
    api.write_tasks(&e2);
    assert_eq!(api.count(TASK_KIND), 5);

    let page1 = api
        .ok("GET", &format!("/v2/{e1}/tasks?pageSize=2"), None)
        .await;
    let e1_id = e1.rsplit('/').next().unwrap();
    assert_eq!(
        names(&page1, "tasks"),
        [
            format!("{e1}/tasks/{e1_id}-0"),
            format!("{e1}/tasks/{e1_id}-1")
        ]
    );
    let token = page1["nextPageToken"].as_str().unwrap();
    let page2 = api
        .ok(
            "GET",
            &format!("/v2/{e1}/tasks?pageSize=2&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(names(&page2, "tasks"), [format!("{e1}/tasks/{e1_id}-2")]);
    assert_eq!(page2["tasks"][0]["index"], 2);
    assert_eq!(page2["tasks"][0]["job"], "batch");
    assert_eq!(page2["tasks"][0]["execution"], e1_id);
    assert!(
        page2["tasks"][0].get("maxRetries").is_none(),
        "0 is omitted"
    );
    let all_of_job = api
        .ok("GET", &format!("{LOC}/jobs/batch/executions/-/tasks"), None)
        .await;
    assert_eq!(names(&all_of_job, "tasks").len(), 5);
    let all = api
        .ok("GET", &format!("{LOC}/jobs/-/executions/-/tasks"), None)
        .await;
    assert_eq!(names(&all, "tasks").len(), 5);
    let (status, body) = api
        .call(
            "GET",
            &format!("{LOC}/jobs/-/executions/{e1_id}/tasks"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, ["parent"]);

    let got = api.ok("GET", &format!("/v2/{}", tasks[1].name), None).await;
    assert_eq!(got, json::to_value(&tasks[1], EnumEncoding::Name));
    assert_eq!(got["conditions"][0]["state"], "CONDITION_PENDING");
    let got = api
        .ok(
            "GET",
            &format!("/v2/{}?$alt=json;enum-encoding=int", tasks[1].name),
            None,
        )
        .await;
    assert_eq!(got["conditions"][0]["state"], 1);
    let (status, body) = api
        .call("GET", &format!("/v2/{e1}/tasks/{e1_id}-9"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kind 'TASK'"));
}

#[tokio::test]
async fn deletions_cascade() {
    let api = Api::new();
    api.create(
        "batch",
        json!({"template": {"taskCount": 2, "template": {"containers": [{"image": "img"}]}}}),
    )
    .await;
    api.create("other", job_body("img")).await;
    let e1 = api.run("batch", json!({})).await["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let e2 = api.run("batch", json!({})).await["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let e3 = api.run("other", json!({})).await["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    for e in [&e1, &e2, &e3] {
        api.write_tasks(e);
    }
    assert_eq!((api.count(EXECUTION_KIND), api.count(TASK_KIND)), (3, 5));

    // An execution takes its tasks with it; a running one may go.
    let del = api.ok("DELETE", &format!("/v2/{e1}"), None).await;
    assert_eq!(del["done"], true);
    assert_eq!(
        del["response"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Execution"
    );
    assert!(del["response"]["deleteTime"].is_string());
    assert_eq!((api.count(EXECUTION_KIND), api.count(TASK_KIND)), (2, 3));
    let (status, _) = api.call("GET", &format!("/v2/{e1}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call("DELETE", &format!("/v2/{e1}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The job takes its executions and their tasks, in one transaction.
    let before = api.store.revision().unwrap();
    let del = api.ok("DELETE", &format!("{LOC}/jobs/batch"), None).await;
    assert_eq!(del["done"], true);
    assert_eq!(api.count(JOB_KIND), 1);
    assert_eq!((api.count(EXECUTION_KIND), api.count(TASK_KIND)), (1, 1));
    let changes = api.store.changes_since(before).unwrap();
    let deleted: Vec<&str> = changes
        .iter()
        .filter(|c| c.op == store::ChangeOp::Delete)
        .map(|c| c.kind.as_str())
        .collect();
    assert_eq!(deleted, ["job", "execution", "task", "task"]);
    let (status, _) = api.call("GET", &format!("/v2/{e2}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The other job's are untouched.
    api.ok("GET", &format!("/v2/{e3}"), None).await;
    let other = api.ok("GET", &format!("/v2/{e3}/tasks"), None).await;
    assert_eq!(names(&other, "tasks").len(), 1);
}
