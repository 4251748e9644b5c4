//! Cloud Run's defaults.

use api::defaults::{
    apply_service_defaults, effective_concurrency, effective_max_instances, effective_timeout,
};
use api::json::{self, EnumEncoding};
use api::validate::validate_service;
use api::{Duration, Service};
use serde_json::{json, Value};

fn defaulted(members: Value) -> Value {
    let mut s: Service = json::from_value(members).unwrap();
    apply_service_defaults(&mut s);
    let once = s.clone();
    apply_service_defaults(&mut s);
    assert_eq!(s, once, "defaults are idempotent");
    json::to_value(&s, EnumEncoding::Name)
}

#[test]
fn a_bare_service_gets_cloud_runs_defaults() {
    assert_eq!(
        defaulted(json!({"template": {"containers": [{"image": "img"}]}})),
        json!({
            "ingress": "INGRESS_TRAFFIC_ALL",
            "launchStage": "GA",
            "template": {
                "scaling": {"maxInstanceCount": 100},
                "timeout": "300s",
                "containers": [{
                    "image": "img",
                    "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "cpuIdle": true},
                    "ports": [{"name": "http1", "containerPort": 8080}],
                    "startupProbe": {
                        "timeoutSeconds": 240,
                        "periodSeconds": 240,
                        "failureThreshold": 1,
                        "tcpSocket": {"port": 8080}
                    }
                }],
                "maxInstanceRequestConcurrency": 80
            },
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
        })
    );
}

#[test]
fn given_values_are_kept() {
    let v = defaulted(json!({
        "ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY",
        "launchStage": "BETA",
        "template": {
            "scaling": {"minInstanceCount": 2, "maxInstanceCount": 7},
            "timeout": "60s",
            "maxInstanceRequestConcurrency": 5,
            "containers": [{
                "image": "img",
                "resources": {"limits": {"cpu": "2", "memory": "2Gi"}, "cpuIdle": true},
                "ports": [{"name": "h2c", "containerPort": 50051}],
                "startupProbe": {"grpc": {}}
            }]
        },
        "traffic": [{"revision": "hello-1", "percent": 100}]
    }));
    assert_eq!(v["ingress"], "INGRESS_TRAFFIC_INTERNAL_ONLY");
    assert_eq!(v["launchStage"], "BETA");
    let t = &v["template"];
    assert_eq!(
        t["scaling"],
        json!({"minInstanceCount": 2, "maxInstanceCount": 7})
    );
    assert_eq!(t["timeout"], "60s");
    assert_eq!(t["maxInstanceRequestConcurrency"], 5);
    let c = &t["containers"][0];
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "2", "memory": "2Gi"}, "cpuIdle": true})
    );
    assert_eq!(c["ports"], json!([{"name": "h2c", "containerPort": 50051}]));
    // A given probe gets the probe defaults and the container's port.
    assert_eq!(
        c["startupProbe"],
        json!({"timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3, "grpc": {"port": 50051}})
    );
    // A target naming a revision is a REVISION target.
    assert_eq!(
        v["traffic"],
        json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "hello-1", "percent": 100}])
    );
}

#[test]
fn less_than_one_cpu_means_concurrency_one() {
    let v = defaulted(
        json!({"template": {"containers": [{"image": "img", "resources": {"limits": {"cpu": "0.5"}, "cpuIdle": true}}]}}),
    );
    assert_eq!(v["template"]["maxInstanceRequestConcurrency"], 1);
    // The memory limit is filled in beside the given CPU.
    assert_eq!(
        v["template"]["containers"][0]["resources"]["limits"],
        json!({"cpu": "0.5", "memory": "512Mi"})
    );
    let v = defaulted(
        json!({"template": {"containers": [{"image": "img", "resources": {"limits": {"cpu": "1"}}}]}}),
    );
    assert_eq!(v["template"]["maxInstanceRequestConcurrency"], 80);
}

#[test]
fn given_resources_keep_their_cpu_idle() {
    // Cloud Run: cpuIdle is true by default only when `resources` is absent.
    let v = defaulted(
        json!({"template": {"containers": [{"image": "img", "resources": {"limits": {"memory": "1Gi"}}}]}}),
    );
    assert_eq!(
        v["template"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "1", "memory": "1Gi"}})
    );
}

#[test]
fn sidecars_get_resources_but_no_port_or_probe() {
    let v = defaulted(json!({"template": {"containers": [
        {"name": "side", "image": "busybox", "livenessProbe": {"httpGet": {"port": 9000}}},
        {"name": "app", "image": "img", "ports": [{}], "livenessProbe": {"httpGet": {}}}
    ]}}));
    let side = &v["template"]["containers"][0];
    assert!(side.get("ports").is_none());
    assert!(side.get("startupProbe").is_none());
    assert_eq!(
        side["resources"]["limits"],
        json!({"cpu": "1", "memory": "512Mi"})
    );
    assert_eq!(
        side["livenessProbe"]["httpGet"],
        json!({"path": "/", "port": 9000})
    );
    let app = &v["template"]["containers"][1];
    assert_eq!(
        app["ports"],
        json!([{"name": "http1", "containerPort": 8080}])
    );
    assert_eq!(app["startupProbe"]["tcpSocket"]["port"], 8080);
    assert_eq!(
        app["livenessProbe"]["httpGet"],
        json!({"path": "/", "port": 8080})
    );
    // Two sidecars at one CPU each: 80.
    assert_eq!(v["template"]["maxInstanceRequestConcurrency"], 80);
}

#[test]
fn defaulted_services_stay_valid() {
    let mut s: Service = json::from_value(json!({
        "name": "projects/p/locations/l/services/hello",
        "template": {"containers": [{"image": "img"}]}
    }))
    .unwrap();
    apply_service_defaults(&mut s);
    validate_service(&s).unwrap();
}

#[test]
fn effective_values_without_defaults_applied() {
    let s: Service =
        json::from_value(json!({"template": {"containers": [{"image": "img"}]}})).unwrap();
    let t = s.template.as_ref().unwrap();
    assert_eq!(effective_concurrency(t), 80);
    assert_eq!(effective_max_instances(t), 100);
    assert_eq!(effective_timeout(t), Duration::from_secs(300));
}

#[test]
fn the_service_account_defaults_to_the_projects_compute_account() {
    let number = api::naming::project_number("my-project");
    let v = defaulted(json!({
        "name": "projects/my-project/locations/local/services/hello",
        "template": {"containers": [{"image": "img"}]}
    }));
    assert_eq!(
        v["template"]["serviceAccount"],
        format!("{number}-compute@developer.gserviceaccount.com")
    );
    let v = defaulted(json!({
        "name": "projects/my-project/locations/local/services/hello",
        "template": {"serviceAccount": "runner@my-project.iam.gserviceaccount.com", "containers": [{"image": "img"}]}
    }));
    assert_eq!(
        v["template"]["serviceAccount"],
        "runner@my-project.iam.gserviceaccount.com"
    );
}
