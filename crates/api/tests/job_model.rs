//! Jobs, executions and tasks without HTTP: their proto3 JSON, Cloud Run's defaults,
//! validation with field paths, ids, overrides and the task constructor.

use api::defaults::{
    apply_job_defaults, effective_max_retries, effective_task_count, effective_task_timeout,
};
use api::json::{self, EnumEncoding};
use api::names::{validate_execution_id, validate_task_id, ExecutionName, TaskName};
use api::naming::{execution_id, generate_execution_id, random_execution_suffix, task_id};
use api::validate::{validate_job, validate_overrides};
use api::wkt::TypeUrl;
use api::*;
use serde_json::{json, Value};

const NAME: &str = "projects/local/locations/local/jobs/batch";

/// A `CreateJob` body as google-cloud-run's REST transport writes it (enums as numbers,
/// `maxRetries` present even at 0), written by hand from the protos.
const PYTHON_CREATE_BODY: &str = r#"{
  "labels": {"team": "data"},
  "client": "homerun-test",
  "launchStage": 3,
  "template": {
    "labels": {"run": "nightly"},
    "parallelism": 2,
    "taskCount": 5,
    "template": {
      "containers": [
        {
          "name": "main",
          "image": "127.0.0.1:5000/homerun/probe:latest",
          "command": ["/probe"],
          "args": ["task", "--sleep", "1s"],
          "env": [{"name": "MODE", "value": "fast"}],
          "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
          "startupProbe": {"tcpSocket": {"port": 8080}}
        }
      ],
      "maxRetries": 0,
      "timeout": "3600s",
      "serviceAccount": "batch@local.iam.gserviceaccount.com",
      "executionEnvironment": 2
    }
  }
}"#;

fn job(members: Value) -> Job {
    let mut j: Job = json::from_value(members).unwrap_or_else(|e| panic!("{e:?}"));
    j.name = NAME.into();
    j
}

/// A job named `batch` with one container (merged over `{"image": "img"}`) and these
/// task template and execution template members.
fn job_with(container: Value, task: Value, execution: Value) -> Job {
    let mut c = json!({"image": "img"});
    for (k, v) in container.as_object().unwrap() {
        c[k] = v.clone();
    }
    let mut t = json!({"containers": [c]});
    for (k, v) in task.as_object().unwrap() {
        t[k] = v.clone();
    }
    let mut e = json!({"template": t});
    for (k, v) in execution.as_object().unwrap() {
        e[k] = v.clone();
    }
    job(json!({ "template": e }))
}

fn simple() -> Job {
    job_with(json!({}), json!({}), json!({}))
}

fn fields(j: &Job) -> Vec<String> {
    match validate_job(j) {
        Ok(()) => Vec::new(),
        Err(b) => b.field_violations.into_iter().map(|v| v.field).collect(),
    }
}

#[track_caller]
fn assert_violation(j: &Job, field: &str) -> String {
    let b = validate_job(j).expect_err("expected a violation");
    let v: Vec<_> = b
        .field_violations
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].0, field, "{v:#?}");
    v[0].1.to_string()
}

#[test]
fn python_client_body_round_trips() {
    let j: Job = json::from_slice(PYTHON_CREATE_BODY.as_bytes()).unwrap();
    assert_eq!(j.launch_stage, LaunchStage::Beta);
    let t = j.template.as_ref().unwrap();
    assert_eq!((t.parallelism, t.task_count), (2, 5));
    let task = t.template.as_ref().unwrap();
    assert_eq!(
        task.max_retries,
        Some(0),
        "presence of an explicit 0 is kept"
    );
    assert_eq!(task.timeout, Some(Duration::from_secs(3600)));
    assert_eq!(task.execution_environment, ExecutionEnvironment::Gen2);
    assert_eq!(task.containers[0].args, ["task", "--sleep", "1s"]);

    // Out again with int enums: the same members as sent.
    let out = json::to_value(&j, EnumEncoding::Int);
    assert_eq!(
        out,
        serde_json::from_str::<Value>(PYTHON_CREATE_BODY).unwrap()
    );
    // With names.
    let named = json::to_value(&j, EnumEncoding::Name);
    assert_eq!(named["launchStage"], "BETA");
    assert_eq!(
        named["template"]["template"]["executionEnvironment"],
        "EXECUTION_ENVIRONMENT_GEN2"
    );
    assert_eq!(named["template"]["template"]["maxRetries"], 0);
    let back: Job = json::from_value(named).unwrap();
    assert_eq!(back, j);
    // snake_case is read too.
    let snake: Job =
        json::from_value(json!({"template": {"task_count": 3, "template": {"max_retries": 2}}}))
            .unwrap();
    assert_eq!(snake.template.as_ref().unwrap().task_count, 3);
    assert_eq!(
        snake.template.unwrap().template.unwrap().max_retries,
        Some(2)
    );
}

#[test]
fn output_fields_round_trip() {
    let text = json!({
        "name": NAME,
        "uid": "0d6a7c1e-2f0b-4a53-9d2e-6a6f0e6b9c11",
        "generation": "2",
        "observedGeneration": "2",
        "executionCount": 4,
        "latestCreatedExecution": {
            "name": format!("{NAME}/executions/batch-x7k2p"),
            "createTime": "2024-05-01T10:00:00Z",
            "completionTime": "2024-05-01T10:01:00.250Z",
            "completionStatus": "EXECUTION_SUCCEEDED"
        },
        "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED"},
        "template": {"taskCount": 1, "template": {"containers": [{"image": "img"}]}},
        "etag": "\"abc\""
    });
    let j: Job = json::from_value(text.clone()).unwrap();
    assert_eq!(j.execution_count, 4);
    let latest = j.latest_created_execution.as_ref().unwrap();
    assert_eq!(latest.completion_status, CompletionStatus::Succeeded);
    assert_eq!(json::to_value(&j, EnumEncoding::Name), text);
    let ints = json::to_value(&j, EnumEncoding::Int);
    assert_eq!(ints["latestCreatedExecution"]["completionStatus"], 1);
    assert_eq!(ints["terminalCondition"]["state"], 4);
    assert_eq!(json::from_value::<Job>(ints).unwrap(), j);

    let e = json!({
        "name": format!("{NAME}/executions/batch-x7k2p"),
        "job": "batch",
        "generation": "1",
        "launchStage": "GA",
        "parallelism": 2,
        "taskCount": 5,
        "template": {"containers": [{"image": "img"}], "maxRetries": 3, "timeout": "600s"},
        "reconciling": true,
        "conditions": [{
            "type": "Completed",
            "state": "CONDITION_RECONCILING",
            "executionReason": "CANCELLING"
        }],
        "runningCount": 1,
        "succeededCount": 2,
        "failedCount": 1,
        "cancelledCount": 1,
        "retriedCount": 1,
        "startTime": "2024-05-01T10:00:01Z"
    });
    let ex: Execution = json::from_value(e.clone()).unwrap();
    assert_eq!(ex.id(), "batch-x7k2p");
    assert_eq!(ex.job_name(), NAME);
    assert_eq!(
        ex.completed_condition().unwrap().execution_reason,
        Some(api::condition::ExecutionReason::Cancelling)
    );
    assert!(!ex.is_finished());
    assert_eq!(json::to_value(&ex, EnumEncoding::Name), e);
    let ints = json::to_value(&ex, EnumEncoding::Int);
    assert_eq!(ints["conditions"][0]["executionReason"], 4);
    assert_eq!(ints["launchStage"], 4);
    assert_eq!(json::from_value::<Execution>(ints).unwrap(), ex);

    let t = json!({
        "name": format!("{NAME}/executions/batch-x7k2p/tasks/batch-x7k2p-1"),
        "job": "batch",
        "execution": "batch-x7k2p",
        "index": 1,
        "retried": 2,
        "maxRetries": 3,
        "lastAttemptResult": {
            "status": {"code": 2, "message": "Task failed: the container was killed"},
            "termSignal": 9
        },
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN1"
    });
    let task: Task = json::from_value(t.clone()).unwrap();
    let last = task.last_attempt_result.as_ref().unwrap();
    assert_eq!((last.exit_code, last.term_signal), (0, 9));
    assert_eq!(last.status.as_ref().unwrap().code, 2);
    assert_eq!(json::to_value(&task, EnumEncoding::Name), t);
    assert_eq!(
        json::to_value(&task, EnumEncoding::Int)["executionEnvironment"],
        1
    );
    let ok = TaskAttemptResult {
        status: Some(Status::default()),
        exit_code: 0,
        term_signal: 0,
    };
    assert_eq!(
        json::to_value(&ok, EnumEncoding::Name),
        json!({"status": {}})
    );
}

#[test]
fn run_and_cancel_requests_parse() {
    let r: RunJobRequest = json::from_value(json!({
        "validateOnly": true,
        "etag": "\"e\"",
        "overrides": {
            "containerOverrides": [{"name": "main", "args": ["a"], "env": [{"name": "X", "value": "1"}], "clearArgs": false}],
            "taskCount": "3",
            "timeout": "30s"
        }
    }))
    .unwrap();
    assert!(r.validate_only);
    let o = r.overrides.unwrap();
    assert_eq!(o.task_count, 3);
    assert_eq!(o.timeout, Some(Duration::from_secs(30)));
    assert_eq!(o.container_overrides[0].env[0], EnvVar::new("X", "1"));
    let c: api::execution::CancelExecutionRequest =
        json::from_value(json!({"validate_only": true, "etag": "x"})).unwrap();
    assert!(c.validate_only);
    // A bad value names its field.
    let err =
        json::from_value::<RunJobRequest>(json!({"overrides": {"taskCount": "many"}})).unwrap_err();
    assert_eq!(
        err.bad_request().unwrap().field_violations[0].field,
        "overrides.taskCount"
    );
}

#[test]
fn any_packs_jobs_executions_and_tasks() {
    let j = simple();
    let any = Any::from(j.clone());
    assert_eq!(
        any.type_url(),
        "type.googleapis.com/google.cloud.run.v2.Job"
    );
    assert_eq!(<Job as TypeUrl>::TYPE_URL, any.type_url());
    let v = json::to_value(&any, EnumEncoding::Name);
    assert_eq!(v["@type"], "type.googleapis.com/google.cloud.run.v2.Job");
    assert_eq!(v["name"], NAME);
    let back: Any = json::from_value(v).unwrap();
    assert_eq!(back.as_job(), Some(&j));
    let e = Execution {
        name: format!("{NAME}/executions/batch-x7k2p"),
        ..Default::default()
    };
    let v = json::to_value(&Any::from(e.clone()), EnumEncoding::Name);
    assert_eq!(
        v["@type"],
        "type.googleapis.com/google.cloud.run.v2.Execution"
    );
    assert_eq!(json::from_value::<Any>(v).unwrap().as_execution(), Some(&e));
    let t = Task::for_execution(&e, 1);
    let v = json::to_value(&Any::from(t.clone()), EnumEncoding::Name);
    assert_eq!(v["@type"], "type.googleapis.com/google.cloud.run.v2.Task");
    assert_eq!(json::from_value::<Any>(v).unwrap().as_task(), Some(&t));
}

#[test]
fn a_bare_job_gets_cloud_runs_defaults() {
    let mut j = simple();
    apply_job_defaults(&mut j);
    let once = j.clone();
    apply_job_defaults(&mut j);
    assert_eq!(j, once, "defaults are idempotent");
    assert_eq!(
        json::to_value(&j, EnumEncoding::Name),
        json!({
            "name": NAME,
            "launchStage": "GA",
            "template": {
                "taskCount": 1,
                "template": {
                    "containers": [{
                        "image": "img",
                        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}
                    }],
                    "maxRetries": 3,
                    "timeout": "600s",
                    "serviceAccount": api::naming::default_service_account("local")
                }
            }
        })
    );
    let t = j.template.as_ref().unwrap();
    assert_eq!(effective_task_count(t), 1);
    let task = t.template.as_ref().unwrap();
    assert_eq!(effective_max_retries(task), 3);
    assert_eq!(effective_task_timeout(task), Duration::from_secs(600));
    assert_eq!(t.parallelism, 0, "0 stays: as many as the platform allows");
}

#[test]
fn given_job_values_are_kept_by_the_defaults() {
    let mut j = job_with(
        json!({
            "resources": {"limits": {"memory": "1Gi"}},
            "ports": [{"containerPort": 9000}],
            "startupProbe": {"httpGet": {}}
        }),
        json!({"maxRetries": 0, "timeout": "30s"}),
        json!({"taskCount": 4, "parallelism": 2}),
    );
    j.launch_stage = LaunchStage::Beta;
    apply_job_defaults(&mut j);
    let v = json::to_value(&j, EnumEncoding::Name);
    assert_eq!(v["launchStage"], "BETA");
    assert_eq!(v["template"]["taskCount"], 4);
    assert_eq!(v["template"]["parallelism"], 2);
    let task = &v["template"]["template"];
    assert_eq!(task["maxRetries"], 0);
    assert_eq!(task["timeout"], "30s");
    let c = &task["containers"][0];
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "1", "memory": "1Gi"}})
    );
    // No port added, the given one kept without a name; the probe's port defaults to it.
    assert_eq!(c["ports"], json!([{"containerPort": 9000}]));
    assert_eq!(
        c["startupProbe"],
        json!({"timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3, "httpGet": {"path": "/", "port": 9000}})
    );
}

#[test]
fn a_minimal_job_is_valid_before_and_after_defaults() {
    let mut j = simple();
    assert_eq!(fields(&j), Vec::<String>::new());
    apply_job_defaults(&mut j);
    assert_eq!(fields(&j), Vec::<String>::new());
    let parsed: Job = json::from_slice(PYTHON_CREATE_BODY.as_bytes()).unwrap();
    let mut parsed = Job {
        name: NAME.into(),
        ..parsed
    };
    assert_eq!(fields(&parsed), Vec::<String>::new());
    apply_job_defaults(&mut parsed);
    assert_eq!(fields(&parsed), Vec::<String>::new());
}

#[test]
fn job_names_and_required_templates() {
    let mut j = simple();
    j.name.clear();
    assert_violation(&j, "job.name");
    for bad in [
        "projects/local/locations/local/jobs/Batch",
        "projects/local/locations/local/jobs/1batch",
        "projects/local/locations/local/jobs/batch-",
        "projects/local/locations/local/services/batch",
    ] {
        j.name = bad.into();
        assert_violation(&j, "job.name");
    }
    j.name = format!("projects/local/locations/local/jobs/{}", "a".repeat(63));
    assert_eq!(fields(&j), Vec::<String>::new());
    j.name = format!("projects/local/locations/local/jobs/{}", "a".repeat(64));
    assert_violation(&j, "job.name");

    assert_violation(&job(json!({})), "job.template");
    assert_violation(&job(json!({"template": {}})), "job.template.template");
    assert_violation(
        &job(json!({"template": {"template": {}}})),
        "job.template.template.containers",
    );
}

#[test]
fn task_counts_parallelism_retries_and_timeouts() {
    for (execution, field) in [
        (json!({"taskCount": -1}), "job.template.taskCount"),
        (json!({"taskCount": 10001}), "job.template.taskCount"),
        (json!({"parallelism": -1}), "job.template.parallelism"),
        (
            json!({"taskCount": 3, "parallelism": 4}),
            "job.template.parallelism",
        ),
        // Parallelism above the default task count (1).
        (json!({"parallelism": 2}), "job.template.parallelism"),
    ] {
        assert_violation(&job_with(json!({}), json!({}), execution), field);
    }
    for ok in [
        json!({"taskCount": 10000, "parallelism": 10000}),
        json!({"taskCount": 3, "parallelism": 0}),
        json!({"taskCount": 3, "parallelism": 3}),
    ] {
        assert_eq!(
            fields(&job_with(json!({}), json!({}), ok)),
            Vec::<String>::new()
        );
    }
    for (task, field) in [
        (
            json!({"maxRetries": -1}),
            "job.template.template.maxRetries",
        ),
        (
            json!({"maxRetries": 11}),
            "job.template.template.maxRetries",
        ),
        (json!({"timeout": "0s"}), "job.template.template.timeout"),
        (
            json!({"timeout": "604801s"}),
            "job.template.template.timeout",
        ),
        (
            json!({"nodeSelector": {"accelerator": "nvidia-l4"}}),
            "job.template.template.nodeSelector",
        ),
    ] {
        assert_violation(&job_with(json!({}), task, json!({})), field);
    }
    for ok in [
        json!({"maxRetries": 0}),
        json!({"maxRetries": 10}),
        json!({"timeout": "604800s"}),
    ] {
        assert_eq!(
            fields(&job_with(json!({}), ok, json!({}))),
            Vec::<String>::new()
        );
    }
}

#[test]
fn job_containers_share_the_services_rules() {
    let p = "job.template.template.containers[0]";
    // Resources: the same code as services.
    let d = assert_violation(
        &job_with(
            json!({"resources": {"limits": {"cpu": "3"}}}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.resources.limits.cpu"),
    );
    assert!(d.contains("2, 4, 6 or 8"), "{d}");
    assert_violation(
        &job_with(
            json!({"resources": {"limits": {"cpu": "4", "memory": "1Gi"}}}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.resources.limits.memory"),
    );
    assert_violation(
        &job_with(
            json!({"resources": {"limits": {"memory": "256Mi"}}}),
            json!({"executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2"}),
            json!({}),
        ),
        &format!("{p}.resources.limits.memory"),
    );
    // Below one CPU needs no cpuIdle for a job.
    assert_eq!(
        fields(&job_with(
            json!({"resources": {"limits": {"cpu": "0.5", "memory": "512Mi"}}}),
            json!({}),
            json!({})
        )),
        Vec::<String>::new()
    );
    assert_violation(
        &job_with(json!({"image": ""}), json!({}), json!({})),
        &format!("{p}.image"),
    );
    // The platform's variables are reserved; PORT is not a job's.
    assert_violation(
        &job_with(
            json!({"env": [{"name": "CLOUD_RUN_TASK_INDEX", "value": "1"}]}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.env[0].name"),
    );
    assert_eq!(
        fields(&job_with(
            json!({"env": [{"name": "PORT", "value": "1"}]}),
            json!({}),
            json!({})
        )),
        Vec::<String>::new()
    );
    // Secrets, as env and as volumes, are checked as for services.
    assert_eq!(
        fields(&job_with(
            json!({"env": [{"name": "S", "valueSource": {"secretKeyRef": {"secret": "s"}}}]}),
            json!({"volumes": [{"name": "s", "secret": {"secret": "x"}}]}),
            json!({}),
        )),
        Vec::<String>::new()
    );
    assert_violation(
        &job_with(
            json!({"env": [{"name": "S", "valueSource": {"secretKeyRef": {"secret": "s", "version": "v1"}}}]}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.env[0].valueSource.secretKeyRef.version"),
    );
    assert_violation(
        &job_with(
            json!({}),
            json!({"volumes": [{"name": "s", "secret": {"secret": "x", "items": [{"path": "../x"}]}}]}),
            json!({}),
        ),
        "job.template.template.volumes[0].secret.items[0].path",
    );
}

#[test]
fn job_ports_and_probes() {
    let p = "job.template.template.containers[0]";
    // A port is accepted (checked as for services), and none is needed.
    assert_eq!(
        fields(&job_with(
            json!({"ports": [{"containerPort": 8080}]}),
            json!({}),
            json!({})
        )),
        Vec::<String>::new()
    );
    assert_violation(
        &job_with(
            json!({"ports": [{"name": "grpc", "containerPort": 8080}]}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.ports[0].name"),
    );
    // A startup probe needs a port to default to.
    assert_violation(
        &job_with(
            json!({"startupProbe": {"tcpSocket": {}}}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.startupProbe.tcpSocket.port"),
    );
    assert_eq!(
        fields(&job_with(
            json!({"startupProbe": {"tcpSocket": {"port": 8080}}}),
            json!({}),
            json!({})
        )),
        Vec::<String>::new()
    );
    // At most 600 s of startup.
    assert_violation(
        &job_with(
            json!({"startupProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 240, "failureThreshold": 3}}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.startupProbe"),
    );
    // No liveness probes.
    let d = assert_violation(
        &job_with(
            json!({"livenessProbe": {"httpGet": {"port": 1}}}),
            json!({}),
            json!({}),
        ),
        &format!("{p}.livenessProbe"),
    );
    assert!(d.contains("not supported for jobs"), "{d}");
    // Several containers: names, but no ingress container.
    let two = job(json!({"template": {"template": {"containers": [
        {"name": "a", "image": "img"},
        {"name": "b", "image": "img", "dependsOn": ["a"]}
    ]}}}));
    assert_eq!(fields(&two), Vec::<String>::new());
    let unnamed = job(json!({"template": {"template": {"containers": [
        {"name": "a", "image": "img"},
        {"image": "img"}
    ]}}}));
    assert_violation(&unnamed, "job.template.template.containers[1].name");
}

#[test]
fn job_labels_tokens_and_binary_authorization() {
    let mut j = simple();
    j.labels.insert("run.googleapis.com/x".into(), "y".into());
    assert_violation(&j, r#"job.labels["run.googleapis.com/x"]"#);
    let mut j = simple();
    j.template
        .as_mut()
        .unwrap()
        .annotations
        .insert("autoscaling.knative.dev/x".into(), "1".into());
    assert_violation(
        &j,
        r#"job.template.annotations["autoscaling.knative.dev/x"]"#,
    );
    let mut j = simple();
    j.start_execution_token = Some("first".into());
    let d = assert_violation(&j, "job.startExecutionToken");
    assert!(d.contains("homerun"), "{d}");
    let mut j = simple();
    j.run_execution_token = Some("first".into());
    assert_violation(&j, "job.runExecutionToken");
    let mut j = simple();
    j.binary_authorization = Some(api::vendor::BinaryAuthorization {
        use_default: Some(true),
        policy: Some("p".into()),
        ..Default::default()
    });
    assert_violation(&j, "job.binaryAuthorization");
    // Every violation at once.
    let j = job_with(
        json!({"image": "", "livenessProbe": {"httpGet": {}}}),
        json!({"maxRetries": 99}),
        json!({"taskCount": -5}),
    );
    assert_eq!(
        fields(&j),
        [
            "job.template.taskCount",
            "job.template.template.maxRetries",
            "job.template.template.containers[0].image",
            "job.template.template.containers[0].livenessProbe",
        ]
    );
    // As a Status: INVALID_ARGUMENT with the BadRequest.
    let status = Status::from(validate_job(&j).unwrap_err());
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.bad_request().unwrap().field_violations.len(), 4);
}

fn two_container_job() -> Job {
    let mut j = job(
        json!({"template": {"taskCount": 4, "parallelism": 4, "template": {"containers": [
            {"name": "main", "image": "img", "args": ["a", "b"], "env": [
                {"name": "KEEP", "value": "1"}, {"name": "MODE", "value": "slow"}
            ]},
            {"name": "side", "image": "img", "args": ["s"]}
        ]}}}),
    );
    apply_job_defaults(&mut j);
    j
}

#[test]
fn overrides_are_validated_with_paths() {
    let j = two_container_job();
    let check = |o: Value| -> Vec<String> {
        let o: Overrides = json::from_value(o).unwrap();
        match validate_overrides(&o, &j) {
            Ok(()) => Vec::new(),
            Err(b) => b.field_violations.into_iter().map(|v| v.field).collect(),
        }
    };
    assert_eq!(
        check(
            json!({"containerOverrides": [{"name": "main", "args": ["x"]}], "taskCount": 2, "timeout": "5s"})
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        check(json!({"containerOverrides": [
            {"name": "nope"},
            {"args": ["x"]},
            {"name": "main", "args": ["x"], "clearArgs": true},
            {"name": "main", "env": [{"name": "CLOUD_RUN_JOB", "value": "x"}, {"name": "", "value": "y"}]}
        ], "taskCount": -1, "timeout": "700000s"})),
        [
            "overrides.containerOverrides[0].name",
            "overrides.containerOverrides[1].name",
            "overrides.containerOverrides[2].clearArgs",
            "overrides.containerOverrides[3].name",
            "overrides.containerOverrides[3].env[0].name",
            "overrides.containerOverrides[3].env[1].name",
            "overrides.taskCount",
            "overrides.timeout",
        ]
    );
    // One container: the name may be left out.
    let mut single = simple();
    apply_job_defaults(&mut single);
    let o: Overrides = json::from_value(json!({"containerOverrides": [{"args": ["x"]}]})).unwrap();
    validate_overrides(&o, &single).unwrap();
}

#[test]
fn overrides_replace_args_merge_env_and_counts() {
    let j = two_container_job();
    let o: Overrides = json::from_value(json!({
        "containerOverrides": [
            {"name": "main", "args": ["x"], "env": [{"name": "MODE", "value": "fast"}, {"name": "NEW", "value": "n"}]},
            {"name": "side", "clearArgs": true}
        ],
        "taskCount": 2,
        "timeout": "5s"
    }))
    .unwrap();
    let t = o.apply(j.template.as_ref().unwrap());
    assert_eq!(t.task_count, 2);
    assert_eq!(t.parallelism, 2, "lowered to the task count");
    let task = t.template.as_ref().unwrap();
    assert_eq!(task.timeout, Some(Duration::from_secs(5)));
    assert_eq!(task.containers[0].args, ["x"]);
    assert_eq!(
        task.containers[0].env,
        [
            EnvVar::new("KEEP", "1"),
            EnvVar::new("MODE", "fast"),
            EnvVar::new("NEW", "n")
        ]
    );
    assert!(task.containers[1].args.is_empty());
    // No overrides: the template as it is.
    assert_eq!(
        Overrides::default().apply(j.template.as_ref().unwrap()),
        *j.template.as_ref().unwrap()
    );
    // Args left empty without clearArgs keep the container's.
    let keep: Overrides = json::from_value(
        json!({"containerOverrides": [{"name": "side", "env": [{"name": "A", "value": "1"}]}]}),
    )
    .unwrap();
    let t = keep.apply(j.template.as_ref().unwrap());
    assert_eq!(t.template.as_ref().unwrap().containers[1].args, ["s"]);
}

#[test]
fn execution_and_task_ids() {
    assert_eq!(execution_id("batch", "x7k2p"), "batch-x7k2p");
    let id = generate_execution_id("batch");
    assert_eq!(id.len(), "batch-x7k2p".len());
    assert!(id.starts_with("batch-"), "{id}");
    assert!(
        id[6..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
    validate_execution_id(&id).unwrap();
    let draws: std::collections::HashSet<String> =
        (0..20).map(|_| random_execution_suffix()).collect();
    assert!(draws.len() > 15, "{draws:?}");
    // The longest job id still makes valid execution and task ids.
    let longest = generate_execution_id(&"a".repeat(63));
    validate_execution_id(&longest).unwrap();
    assert_eq!(task_id("batch-x7k2p", 0), "batch-x7k2p-0");
    assert_eq!(task_id("batch-x7k2p", 9999), "batch-x7k2p-9999");
    validate_task_id(&task_id(&longest, 9999)).unwrap();
}

#[test]
fn executions_and_tasks_are_made_of_the_job() {
    let j = two_container_job();
    let e = Execution::from_job(&j, "batch-x7k2p", j.template.as_ref().unwrap());
    assert_eq!(e.name, format!("{NAME}/executions/batch-x7k2p"));
    assert_eq!(e.job, "batch");
    assert_eq!((e.task_count, e.parallelism), (4, 4));
    assert!(e.reconciling);
    let kinds: Vec<(&str, ConditionState)> = e
        .conditions
        .iter()
        .map(|c| (c.kind.as_str(), c.state))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Completed", ConditionState::Pending),
            ("ResourcesAvailable", ConditionState::Pending)
        ]
    );
    assert!(!e.is_finished());
    assert_eq!(
        e.name
            .parse::<ExecutionName>()
            .unwrap()
            .parent()
            .to_string(),
        NAME
    );

    let t = Task::for_execution(&e, 3);
    assert_eq!(
        t.name,
        format!("{NAME}/executions/batch-x7k2p/tasks/batch-x7k2p-3")
    );
    assert_eq!(t.id(), "batch-x7k2p-3");
    assert_eq!(t.execution_name(), e.name);
    assert_eq!(t.name.parse::<TaskName>().unwrap().execution, "batch-x7k2p");
    assert_eq!(
        (t.job.as_str(), t.execution.as_str(), t.index),
        ("batch", "batch-x7k2p", 3)
    );
    assert_eq!(t.max_retries, 3);
    assert_eq!(t.timeout, Some(Duration::from_secs(600)));
    assert_eq!(t.containers, e.template.as_ref().unwrap().containers);
    assert_eq!(t.uid.len(), 36);
    assert_eq!(t.generation, 1);
    assert!(t.reconciling);
    assert_eq!(t.etag, t.compute_etag());
    assert!(t
        .conditions
        .iter()
        .all(|c| c.state == ConditionState::Pending));
    // maxRetries 0 is kept (explicit presence in the template).
    let mut zero = e.clone();
    zero.template.as_mut().unwrap().max_retries = Some(0);
    assert_eq!(Task::for_execution(&zero, 0).max_retries, 0);
}
