//! The proto3 JSON mapping of the resources, with bodies as Google's clients send them.

use api::condition::{CommonReason, RevisionReason};
use api::json::{self, EnumEncoding};
use api::k8s::Medium;
use api::operation::Operation;
use api::status::{BadRequest, Code, FieldViolation, Status};
use api::vendor::ScalingMode;
use api::*;
use serde_json::{json, Value};

/// A `CreateService` body as google-cloud-run's REST transport writes it:
/// `json_format.MessageToJson(request.service, use_integers_for_enums=True)`, so enums are
/// numbers, int64 strings, durations `"60s"`, defaults left out. Written by hand from
/// the protos.
const PYTHON_CREATE_BODY: &str = r#"{
  "labels": {
    "team": "platform"
  },
  "annotations": {
    "example.com/owner": "alice"
  },
  "client": "homerun-test",
  "clientVersion": "1.0",
  "ingress": 1,
  "launchStage": 4,
  "template": {
    "revision": "hello-blue",
    "labels": {
      "color": "blue"
    },
    "scaling": {
      "minInstanceCount": 1,
      "maxInstanceCount": 5
    },
    "timeout": "60s",
    "serviceAccount": "hello@local.iam.gserviceaccount.com",
    "containers": [
      {
        "name": "app",
        "image": "127.0.0.1:5000/homerun/probe:latest",
        "command": ["/probe"],
        "args": ["serve", "--verbose"],
        "env": [
          {
            "name": "GREETING",
            "value": "hello"
          },
          {
            "name": "EMPTY",
            "value": ""
          }
        ],
        "resources": {
          "limits": {
            "cpu": "2",
            "memory": "1Gi"
          },
          "cpuIdle": true,
          "startupCpuBoost": true
        },
        "ports": [
          {
            "name": "h2c",
            "containerPort": 9090
          }
        ],
        "volumeMounts": [
          {
            "name": "scratch",
            "mountPath": "/scratch"
          }
        ],
        "workingDir": "/srv",
        "livenessProbe": {
          "initialDelaySeconds": 5,
          "timeoutSeconds": 2,
          "periodSeconds": 15,
          "failureThreshold": 4,
          "httpGet": {
            "path": "/healthz",
            "httpHeaders": [
              {
                "name": "X-Probe",
                "value": "1"
              }
            ],
            "port": 9090
          }
        },
        "startupProbe": {
          "timeoutSeconds": 3,
          "periodSeconds": 5,
          "failureThreshold": 10,
          "grpc": {
            "port": 9090,
            "service": "probe"
          }
        },
        "dependsOn": ["sidecar"]
      },
      {
        "name": "sidecar",
        "image": "127.0.0.1:5000/homerun/busybox:latest",
        "resources": {
          "limits": {
            "cpu": "1",
            "memory": "512Mi"
          }
        },
        "startupProbe": {
          "tcpSocket": {
            "port": 7000
          }
        }
      }
    ],
    "volumes": [
      {
        "name": "scratch",
        "emptyDir": {
          "medium": 1,
          "sizeLimit": "64Mi"
        }
      }
    ],
    "executionEnvironment": 2,
    "maxInstanceRequestConcurrency": 40,
    "sessionAffinity": true
  },
  "traffic": [
    {
      "type": 1,
      "percent": 90
    },
    {
      "type": 2,
      "revision": "hello-green",
      "percent": 10,
      "tag": "green"
    }
  ],
  "scaling": {
    "minInstanceCount": 2,
    "scalingMode": 1
  },
  "invokerIamDisabled": true,
  "customAudiences": ["https://hello.example.com"]
}"#;

/// A `GetService` answer as Cloud Run writes it (string enums, output fields).
const GET_RESPONSE: &str = r#"{
  "name": "projects/local/locations/local/services/hello",
  "uid": "0d6a7c1e-2f0b-4a53-9d2e-6a6f0e6b9c11",
  "generation": "2",
  "createTime": "2024-05-01T10:00:00.123456Z",
  "updateTime": "2024-05-01T10:05:00Z",
  "creator": "alice@example.com",
  "lastModifier": "alice@example.com",
  "ingress": "INGRESS_TRAFFIC_ALL",
  "launchStage": "GA",
  "template": {
    "scaling": {
      "maxInstanceCount": 100
    },
    "timeout": "300s",
    "containers": [
      {
        "image": "127.0.0.1:5000/homerun/probe:latest",
        "resources": {
          "limits": {
            "cpu": "1",
            "memory": "512Mi"
          },
          "cpuIdle": true
        },
        "ports": [
          {
            "name": "http1",
            "containerPort": 8080
          }
        ],
        "startupProbe": {
          "timeoutSeconds": 240,
          "periodSeconds": 240,
          "failureThreshold": 1,
          "tcpSocket": {
            "port": 8080
          }
        }
      }
    ],
    "maxInstanceRequestConcurrency": 80
  },
  "traffic": [
    {
      "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
      "percent": 100
    }
  ],
  "observedGeneration": "2",
  "terminalCondition": {
    "type": "Ready",
    "state": "CONDITION_SUCCEEDED",
    "lastTransitionTime": "2024-05-01T10:05:01.500Z"
  },
  "conditions": [
    {
      "type": "RoutesReady",
      "state": "CONDITION_SUCCEEDED",
      "lastTransitionTime": "2024-05-01T10:05:01Z"
    },
    {
      "type": "ConfigurationsReady",
      "state": "CONDITION_FAILED",
      "message": "Revision 'hello-00002-xoz' is not ready: the container exited",
      "lastTransitionTime": "2024-05-01T10:05:00Z",
      "severity": "ERROR",
      "reason": "REVISION_FAILED"
    }
  ],
  "latestReadyRevision": "projects/local/locations/local/services/hello/revisions/hello-00001-abc",
  "latestCreatedRevision": "projects/local/locations/local/services/hello/revisions/hello-00002-xoz",
  "trafficStatuses": [
    {
      "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
      "percent": 100
    }
  ],
  "uri": "http://hello.localhost:8080",
  "urls": ["http://hello.localhost:8080"],
  "etag": "\"5d41402abc4b2a76b9719d911017c592\""
}"#;

fn parse(text: &str) -> Service {
    json::from_slice(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn python_client_body_round_trips() {
    let s = parse(PYTHON_CREATE_BODY);
    let t = s.template.as_ref().unwrap();
    assert_eq!(s.ingress, IngressTraffic::All);
    assert_eq!(s.launch_stage, LaunchStage::Ga);
    assert_eq!(t.execution_environment, ExecutionEnvironment::Gen2);
    assert_eq!(t.timeout, Some(Duration::from_secs(60)));
    assert_eq!(t.scaling.as_ref().unwrap().max_instance_count, 5);
    assert_eq!(t.containers[0].env[1], EnvVar::new("EMPTY", ""));
    assert_eq!(
        t.containers[0].resources.as_ref().unwrap().limits["cpu"],
        "2"
    );
    assert_eq!(t.containers[0].ports[0].container_port, 9090);
    assert_eq!(
        t.containers[0]
            .startup_probe
            .as_ref()
            .unwrap()
            .grpc
            .as_ref()
            .unwrap()
            .service,
        "probe"
    );
    assert_eq!(t.containers[0].depends_on, ["sidecar"]);
    assert_eq!(
        t.volumes[0].empty_dir.as_ref().unwrap().medium,
        Medium::Memory
    );
    assert_eq!(s.traffic[0].kind, TrafficTargetAllocationType::Latest);
    assert_eq!(
        s.traffic[1],
        TrafficTarget::revision("hello-green", 10).with_tag("green")
    );
    assert_eq!(
        s.scaling.as_ref().unwrap().scaling_mode,
        ScalingMode::Automatic
    );
    assert!(s.invoker_iam_disabled);

    // Written back with the encoding the client asked for, it is the same JSON.
    assert_eq!(
        json::to_value(&s, EnumEncoding::Int),
        value(PYTHON_CREATE_BODY)
    );
    // With names, the enums are names.
    let named = json::to_value(&s, EnumEncoding::Name);
    assert_eq!(named["ingress"], "INGRESS_TRAFFIC_ALL");
    assert_eq!(named["launchStage"], "GA");
    assert_eq!(
        named["template"]["executionEnvironment"],
        "EXECUTION_ENVIRONMENT_GEN2"
    );
    assert_eq!(
        named["template"]["volumes"][0]["emptyDir"]["medium"],
        "MEMORY"
    );
    assert_eq!(
        named["traffic"][1]["type"],
        "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
    );
    // And names read back to the same message.
    assert_eq!(json::from_value::<Service>(named).unwrap(), s);
}

#[test]
fn python_client_body_is_valid_once_named() {
    let mut s = parse(PYTHON_CREATE_BODY);
    // On create, the API makes the name of the parent and `serviceId`.
    s.name = "projects/local/locations/local/services/hello".into();
    api::validate::validate_service(&s).unwrap();
    api::defaults::apply_service_defaults(&mut s);
    api::validate::validate_service(&s).unwrap();
}

#[test]
fn get_response_round_trips() {
    let s = parse(GET_RESPONSE);
    assert_eq!(s.generation, 2);
    assert_eq!(s.observed_generation, 2);
    assert_eq!(s.create_time.unwrap().nanos, 123_456_000);
    let failed = &s.conditions[1];
    assert_eq!(failed.state, ConditionState::Failed);
    assert_eq!(failed.reason, Some(CommonReason::RevisionFailed));
    assert_eq!(s.terminal_condition.as_ref().unwrap().kind, "Ready");
    assert_eq!(json::to_value(&s, EnumEncoding::Name), value(GET_RESPONSE));
    // The int64 fields are strings on output, whatever came in.
    let text = json::to_string(&s, EnumEncoding::Name);
    assert!(text.contains(r#""generation":"2""#), "{text}");
    assert!(
        text.contains(r#""lastTransitionTime":"2024-05-01T10:05:01.500Z""#),
        "{text}"
    );
}

#[test]
fn integer_and_string_enums_are_both_accepted() {
    let ints = json!({"ingress": 2, "launchStage": 3, "template": {"executionEnvironment": 1},
                      "traffic": [{"type": 2, "revision": "x-1", "percent": 100}]});
    let names = json!({"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY", "launchStage": "BETA",
                       "template": {"executionEnvironment": "EXECUTION_ENVIRONMENT_GEN1"},
                       "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "x-1", "percent": 100}]});
    let numeric_strings = json!({"ingress": "2", "launchStage": "3", "template": {"executionEnvironment": "1"},
                                 "traffic": [{"type": "2", "revision": "x-1", "percent": 100}]});
    let a: Service = json::from_value(ints).unwrap();
    let b: Service = json::from_value(names).unwrap();
    let c: Service = json::from_value(numeric_strings).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a.ingress, IngressTraffic::InternalOnly);
    assert_eq!(a.launch_stage, LaunchStage::Beta);
    // LaunchStage's odd numbering: PRELAUNCH is 7.
    let p: Service = json::from_value(json!({"launchStage": 7})).unwrap();
    assert_eq!(p.launch_stage, LaunchStage::Prelaunch);
    // The revision reason of a condition, by number.
    let c: Condition = json::from_value(json!({"type": "Ready", "revisionReason": 3})).unwrap();
    assert_eq!(c.revision_reason, Some(RevisionReason::Retired));
}

#[test]
fn unknown_enum_values_are_errors_naming_the_field() {
    for bad in [
        json!({"ingress": 9}),
        json!({"ingress": "INGRESS_TRAFFIC_SOMETIMES"}),
        json!({"ingress": 1.5}),
    ] {
        let e = json::from_value::<Service>(bad).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(
            e.bad_request().unwrap().field_violations[0].field,
            "ingress"
        );
    }
}

#[test]
fn int64_as_string_or_number_and_int32_as_number_or_string() {
    let s: Service =
        json::from_value(json!({"generation": "12", "observedGeneration": 11})).unwrap();
    assert_eq!((s.generation, s.observed_generation), (12, 11));
    let s: Service = json::from_value(json!({"generation": "9223372036854775807"})).unwrap();
    assert_eq!(s.generation, i64::MAX);
    assert_eq!(
        json::to_value(&s, EnumEncoding::Name)["generation"],
        "9223372036854775807"
    );
    let t: RevisionTemplate = json::from_value(
        json!({"maxInstanceRequestConcurrency": "50", "scaling": {"maxInstanceCount": 3.0}}),
    )
    .unwrap();
    assert_eq!(t.max_instance_request_concurrency, 50);
    assert_eq!(t.scaling.unwrap().max_instance_count, 3);
    let out = json::to_value(
        &RevisionTemplate {
            max_instance_request_concurrency: 50,
            ..Default::default()
        },
        EnumEncoding::Name,
    );
    assert_eq!(out["maxInstanceRequestConcurrency"], 50);
    for bad in [
        json!({"generation": "1.5"}),
        json!({"generation": "twelve"}),
        json!({"generation": " 1"}),
        json!({"generation": "9223372036854775808"}),
        json!({"generation": true}),
    ] {
        let e = json::from_value::<Service>(bad.clone()).unwrap_err();
        assert_eq!(
            e.bad_request().unwrap().field_violations[0].field,
            "generation",
            "{bad}"
        );
    }
    let e = json::from_value::<RevisionTemplate>(
        json!({"maxInstanceRequestConcurrency": 4294967296u64}),
    )
    .unwrap_err();
    assert_eq!(
        e.bad_request().unwrap().field_violations[0].field,
        "maxInstanceRequestConcurrency"
    );
}

#[test]
fn unknown_fields_are_ignored_and_nulls_are_defaults() {
    let s: Service = json::from_value(json!({
        "someFutureField": {"nested": [1, 2, 3]},
        "template": {
            "containers": [{"image": "x", "readinessProbe": {"httpGet": {}}, "baseImageUri": "y"}],
            "gpuZonalRedundancyDisabled": true
        },
        "description": null,
        "labels": null,
        "uid": null,
        "scaling": null
    }))
    .unwrap();
    assert_eq!(s.containers()[0].image, "x");
    assert_eq!(s.description, "");
    assert!(s.scaling.is_none());
    assert_eq!(
        json::to_value(&s, EnumEncoding::Name),
        json!({"template": {"containers": [{"image": "x"}]}})
    );
}

#[test]
fn proto_field_names_are_accepted_too() {
    let s: Service = json::from_value(json!({
        "launch_stage": "BETA",
        "invoker_iam_disabled": true,
        "template": {
            "max_instance_request_concurrency": 7,
            "execution_environment": "EXECUTION_ENVIRONMENT_GEN2",
            "containers": [{"image": "x", "ports": [{"container_port": 8081}], "volume_mounts": [{"name": "v", "mount_path": "/v"}]}]
        }
    }))
    .unwrap();
    assert_eq!(s.launch_stage, LaunchStage::Beta);
    assert!(s.invoker_iam_disabled);
    let t = s.template.as_ref().unwrap();
    assert_eq!(t.max_instance_request_concurrency, 7);
    assert_eq!(t.containers[0].ports[0].container_port, 8081);
    assert_eq!(t.containers[0].volume_mounts[0].mount_path, "/v");
}

#[test]
fn defaults_are_omitted_on_output_but_set_messages_and_oneofs_are_kept() {
    assert_eq!(
        json::to_string(&Service::default(), EnumEncoding::Name),
        "{}"
    );
    let s = Service {
        template: Some(RevisionTemplate {
            containers: vec![Container {
                image: "x".into(),
                env: vec![EnvVar::new("EMPTY", "")],
                resources: Some(ResourceRequirements::default()),
                ..Default::default()
            }],
            scaling: Some(RevisionScaling::default()),
            max_instance_request_concurrency: 0,
            ..Default::default()
        }),
        scaling: Some(api::vendor::ServiceScaling {
            manual_instance_count: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        json::to_value(&s, EnumEncoding::Name),
        json!({
            "template": {"scaling": {}, "containers": [{"image": "x", "env": [{"name": "EMPTY", "value": ""}], "resources": {}}]},
            "scaling": {"manualInstanceCount": 0}
        })
    );
}

#[test]
fn parse_errors_name_the_field() {
    let e = json::from_slice::<Service>(br#"{"template": {"containers": [{"image": "x"}, {"ports": [{"containerPort": "eighty"}]}]}}"#)
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.http_status(), 400);
    let v = &e.bad_request().unwrap().field_violations[0];
    assert_eq!(v.field, "template.containers[1].ports[0].containerPort");
    let e = json::from_slice::<Service>(br#"{"template": {"timeout": "5 minutes"}}"#).unwrap_err();
    assert_eq!(
        e.bad_request().unwrap().field_violations[0].field,
        "template.timeout"
    );
    let e = json::from_slice::<Service>(br#"{"createTime": "yesterday"}"#).unwrap_err();
    assert_eq!(
        e.bad_request().unwrap().field_violations[0].field,
        "createTime"
    );
    let e = json::from_slice::<Service>(b"{not json").unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message.starts_with("Invalid JSON payload received."),
        "{}",
        e.message
    );
}

#[test]
fn operations_carry_resources_as_any() {
    let mut service = parse(GET_RESPONSE);
    service.reconciling = true;
    let mut op = Operation::running(
        "projects/local/locations/local/operations/abc123",
        service.clone(),
    );
    let running = json::to_value(&op, EnumEncoding::Name);
    assert_eq!(
        running["name"],
        "projects/local/locations/local/operations/abc123"
    );
    assert_eq!(
        running["metadata"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Service"
    );
    assert_eq!(running["metadata"]["generation"], "2");
    assert!(running.get("done").is_none());
    assert!(running.get("response").is_none());

    service.reconciling = false;
    op.succeed(service.clone());
    let text = json::to_string(&op, EnumEncoding::Int);
    let done: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(done["done"], true);
    assert_eq!(
        done["response"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Service"
    );
    // The enum encoding reaches inside the Any.
    assert_eq!(done["response"]["ingress"], 1);
    let back: Operation = json::from_slice(text.as_bytes()).unwrap();
    assert_eq!(back, op);
    assert_eq!(back.response.as_ref().unwrap().as_service(), Some(&service));

    let mut failed = Operation::running("projects/p/locations/l/operations/x", service);
    failed.fail(Status::from(BadRequest {
        field_violations: vec![FieldViolation::new(
            "service.template.containers[0].image",
            "required",
        )],
    }));
    let v = json::to_value(&failed, EnumEncoding::Name);
    assert_eq!(v["error"]["code"], 3);
    assert_eq!(
        v["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(
        v["error"]["details"][0]["fieldViolations"][0]["field"],
        "service.template.containers[0].image"
    );
    assert!(v.get("response").is_none());
    assert_eq!(json::from_value::<Operation>(v).unwrap(), failed);

    // Unknown packed types are kept as they came.
    let other = json!({"name": "n", "metadata": {"@type": "type.googleapis.com/google.protobuf.Empty"}, "done": true,
                       "response": {"@type": "type.googleapis.com/x.Y", "a": [1]}});
    let op: Operation = json::from_value(other.clone()).unwrap();
    assert_eq!(json::to_value(&op, EnumEncoding::Name), other);

    let both = json!({"done": true, "error": {"code": 5}, "response": {"@type": "type.googleapis.com/x.Y"}});
    assert!(json::from_value::<Operation>(both).is_err());
}

#[test]
fn http_error_body_is_googles_shape() {
    let status = Status::from(BadRequest {
        field_violations: vec![FieldViolation::new(
            "service.template.containers[0].resources.limits.cpu",
            "must be at most 8",
        )],
    });
    assert_eq!(status.http_status(), 400);
    assert_eq!(
        status.to_http_body(EnumEncoding::Name),
        json!({"error": {
            "code": 400,
            "message": "service.template.containers[0].resources.limits.cpu: must be at most 8",
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "service.template.containers[0].resources.limits.cpu", "description": "must be at most 8"}]
            }]
        }})
    );
    let nf = Status::not_found("Service hello not found");
    assert_eq!(nf.http_status(), 404);
    assert_eq!(
        nf.to_http_body(EnumEncoding::Name),
        json!({"error": {"code": 404, "message": "Service hello not found", "status": "NOT_FOUND"}})
    );
    assert_eq!(Status::aborted("etag").http_status(), 409);
    assert_eq!(Status::already_exists("x").http_status(), 409);
    assert_eq!(Status::failed_precondition("x").http_status(), 400);
}

#[test]
fn revision_json() {
    let r: Revision = json::from_value(json!({
        "name": "projects/local/locations/local/services/hello/revisions/hello-00001-abc",
        "generation": "1",
        "service": "projects/local/locations/local/services/hello",
        "maxInstanceRequestConcurrency": 80,
        "timeout": "300s",
        "containers": [{"image": "x"}],
        "conditions": [{"type": "Ready", "state": 4, "revisionReason": "RETIRED"}],
        "observedGeneration": "1",
        "scalingStatus": {"desiredMinInstanceCount": 1},
        "logUri": "http://logs",
        "unknownThing": 1
    }))
    .unwrap();
    assert_eq!(r.id(), "hello-00001-abc");
    assert_eq!(r.conditions[0].state, ConditionState::Succeeded);
    let v = json::to_value(&r, EnumEncoding::Name);
    assert_eq!(v["conditions"][0]["state"], "CONDITION_SUCCEEDED");
    assert_eq!(v["generation"], "1");
    assert_eq!(v["scalingStatus"]["desiredMinInstanceCount"], 1);
    assert!(v.get("unknownThing").is_none());
}
