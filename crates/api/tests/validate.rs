//! Every validation rule, with the path of the field it names.

use api::defaults::apply_service_defaults;
use api::json;
use api::status::{Code, Status};
use api::validate::validate_service;
use api::Service;
use serde_json::{json, Value};

const NAME: &str = "projects/local/locations/local/services/hello";

/// A service named `hello` whose template is `template`.
fn with_template(template: Value) -> Service {
    service(json!({ "template": template }))
}

/// A service named `hello` with these members.
fn service(mut members: Value) -> Service {
    members["name"] = json!(NAME);
    json::from_value(members).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A one-container service with this container (merged over `{"image": "img"}`).
fn with_container(container: Value) -> Service {
    let mut c = json!({"image": "img"});
    for (k, v) in container.as_object().unwrap() {
        c[k] = v.clone();
    }
    with_template(json!({ "containers": [c] }))
}

fn fields(s: &Service) -> Vec<String> {
    match validate_service(s) {
        Ok(()) => Vec::new(),
        Err(b) => b.field_violations.into_iter().map(|v| v.field).collect(),
    }
}

fn assert_valid(s: &Service) {
    assert_eq!(fields(s), Vec::<String>::new(), "{:?}", validate_service(s));
}

/// The service has exactly one violation, of `field`; returns its description.
#[track_caller]
fn assert_violation(s: &Service, field: &str) -> String {
    let b = validate_service(s).expect_err("expected a violation");
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
fn a_minimal_service_is_valid_before_and_after_defaults() {
    let mut s = with_container(json!({}));
    assert_valid(&s);
    apply_service_defaults(&mut s);
    assert_valid(&s);
}

#[test]
fn names() {
    let mut s = with_container(json!({}));
    s.name.clear();
    assert_violation(&s, "service.name");
    for bad in [
        "projects/local/locations/local/services/Hello",
        "projects/local/locations/local/services/1hello",
        "projects/local/locations/local/services/hello-",
        "projects/local/locations/local/services/a234567890123456789012345678901234567890123456789x",
        "projects/local/locations/local/hello",
        "hello",
    ] {
        s.name = bad.into();
        assert_violation(&s, "service.name");
    }
    s.name =
        "projects/local/locations/local/services/a234567890123456789012345678901234567890123456789"
            .into();
    assert_valid(&s);
}

#[test]
fn description_labels_and_annotations() {
    let mut s = with_container(json!({}));
    s.description = "x".repeat(513);
    assert_violation(&s, "service.description");
    s.description = "é".repeat(512);
    assert_valid(&s);

    let mut s = with_container(json!({}));
    s.labels
        .insert("run.googleapis.com/ingress".into(), "all".into());
    assert_violation(&s, r#"service.labels["run.googleapis.com/ingress"]"#);
    let mut s = with_container(json!({}));
    s.labels.insert("Team".into(), "a".into());
    assert_violation(&s, "service.labels.Team");
    let mut s = with_container(json!({}));
    s.labels.insert("team".into(), "Platform".into());
    assert_violation(&s, "service.labels.team");
    let mut s = with_container(json!({}));
    s.labels.insert("team-1_x".into(), "platform-1_x".into());
    s.annotations
        .insert("example.com/anything".into(), "Any Value!".into());
    assert_valid(&s);
    s.annotations
        .insert("autoscaling.knative.dev/maxScale".into(), "3".into());
    assert_violation(
        &s,
        r#"service.annotations["autoscaling.knative.dev/maxScale"]"#,
    );

    let s = with_template(
        json!({"containers": [{"image": "x"}], "annotations": {"run.googleapis.com/cpu-throttling": "false"}}),
    );
    assert_violation(
        &s,
        r#"service.template.annotations["run.googleapis.com/cpu-throttling"]"#,
    );
    let s = with_template(
        json!({"containers": [{"image": "x"}], "labels": {"serving.knative.dev/service": "x"}}),
    );
    assert_violation(
        &s,
        r#"service.template.labels["serving.knative.dev/service"]"#,
    );
}

#[test]
fn template_is_required() {
    assert_violation(&service(json!({})), "service.template");
    assert_violation(&with_template(json!({})), "service.template.containers");
}

#[test]
fn template_revision_name() {
    let ok = with_template(json!({"revision": "hello-blue", "containers": [{"image": "x"}]}));
    assert_valid(&ok);
    for bad in [
        "other-blue",
        "hello-",
        "hello",
        "Hello-blue",
        "hello-blue-",
        &format!("hello-{}", "x".repeat(58)),
    ] {
        let s = with_template(json!({"revision": bad, "containers": [{"image": "x"}]}));
        assert_violation(&s, "service.template.revision");
    }
}

#[test]
fn scaling() {
    let s = with_template(
        json!({"containers": [{"image": "x"}], "scaling": {"minInstanceCount": 3, "maxInstanceCount": 2}}),
    );
    assert_violation(&s, "service.template.scaling.minInstanceCount");
    // Unset max is 100.
    let s = with_template(
        json!({"containers": [{"image": "x"}], "scaling": {"minInstanceCount": 100}}),
    );
    assert_valid(&s);
    let s = with_template(
        json!({"containers": [{"image": "x"}], "scaling": {"minInstanceCount": 101}}),
    );
    assert_violation(&s, "service.template.scaling.minInstanceCount");
    let s =
        with_template(json!({"containers": [{"image": "x"}], "scaling": {"maxInstanceCount": -1}}));
    assert_violation(&s, "service.template.scaling.maxInstanceCount");
    let s =
        with_template(json!({"containers": [{"image": "x"}], "scaling": {"minInstanceCount": -1}}));
    assert_violation(&s, "service.template.scaling.minInstanceCount");
    let mut s = with_container(json!({}));
    s.scaling = Some(api::vendor::ServiceScaling {
        min_instance_count: -2,
        ..Default::default()
    });
    assert_violation(&s, "service.scaling.minInstanceCount");
}

#[test]
fn timeout() {
    for ok in ["1s", "300s", "3600s", "0.5s"] {
        assert_valid(&with_template(
            json!({"containers": [{"image": "x"}], "timeout": ok}),
        ));
    }
    for bad in ["3601s", "3600.000000001s", "0s", "-5s"] {
        let s = with_template(json!({"containers": [{"image": "x"}], "timeout": bad}));
        let d = assert_violation(&s, "service.template.timeout");
        assert!(!d.is_empty());
    }
}

#[test]
fn concurrency() {
    for ok in [1, 80, 1000] {
        assert_valid(&with_template(
            json!({"containers": [{"image": "x"}], "maxInstanceRequestConcurrency": ok}),
        ));
    }
    for bad in [1001, -1] {
        let s = with_template(
            json!({"containers": [{"image": "x"}], "maxInstanceRequestConcurrency": bad}),
        );
        assert_violation(&s, "service.template.maxInstanceRequestConcurrency");
    }
    // Below one CPU: 1 only.
    let fractional = json!({"limits": {"cpu": "0.5"}, "cpuIdle": true});
    assert_valid(&with_template(
        json!({"containers": [{"image": "x", "resources": fractional}]}),
    ));
    assert_valid(&with_template(
        json!({"containers": [{"image": "x", "resources": fractional}], "maxInstanceRequestConcurrency": 1}),
    ));
    let s = with_template(
        json!({"containers": [{"image": "x", "resources": fractional}], "maxInstanceRequestConcurrency": 2}),
    );
    let d = assert_violation(&s, "service.template.maxInstanceRequestConcurrency");
    assert!(d.contains("less than 1 CPU"), "{d}");
}

#[test]
fn cpu_values() {
    for ok in [
        "0.08", "80m", "0.5", "0.999", "1", "1000m", "2", "4", "6", "8", "8.0",
    ] {
        let memory = match ok {
            "4" => "2Gi",
            "6" | "8" | "8.0" => "4Gi",
            _ => "512Mi",
        };
        let s = with_container(
            json!({"resources": {"limits": {"cpu": ok, "memory": memory}, "cpuIdle": true}}),
        );
        assert_valid(&s);
    }
    for bad in [
        "0.07", "0.0805", "1.5", "3", "5", "7", "16", "abc", "", "-1", "2k",
    ] {
        let s = with_container(
            json!({"resources": {"limits": {"cpu": bad, "memory": "4Gi"}, "cpuIdle": true}}),
        );
        assert_violation(&s, "service.template.containers[0].resources.limits.cpu");
    }
}

#[test]
fn fractional_cpu_rules() {
    // Cloud Run's quirk: once `resources` is given, cpuIdle must be said explicitly.
    let s = with_container(json!({"resources": {"limits": {"cpu": "0.5"}}}));
    assert_violation(&s, "service.template.containers[0].resources.cpuIdle");
    // Not in the second generation environment.
    let s = with_template(json!({
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
        "containers": [{"image": "x", "resources": {"limits": {"cpu": "0.5", "memory": "512Mi"}, "cpuIdle": true}}]
    }));
    assert_violation(&s, "service.template.executionEnvironment");
    // Memory: at most 512Mi below 0.5 CPU, 1Gi below 1.
    let s = with_container(
        json!({"resources": {"limits": {"cpu": "0.4", "memory": "1Gi"}, "cpuIdle": true}}),
    );
    assert_violation(&s, "service.template.containers[0].resources.limits.memory");
    let s = with_container(
        json!({"resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}, "cpuIdle": true}}),
    );
    assert_valid(&s);
    let s = with_container(
        json!({"resources": {"limits": {"cpu": "0.9", "memory": "1025Mi"}, "cpuIdle": true}}),
    );
    assert_violation(&s, "service.template.containers[0].resources.limits.memory");
}

#[test]
fn memory_for_cpu() {
    let limits = |cpu: &str, memory: &str| {
        with_container(json!({"resources": {"limits": {"cpu": cpu, "memory": memory}}}))
    };
    for (cpu, memory) in [
        ("1", "128Mi"),
        ("1", "4Gi"),
        ("1", "4096M"),
        ("2", "8Gi"),
        ("4", "2Gi"),
        ("4", "16Gi"),
        ("6", "4Gi"),
        ("6", "24Gi"),
        ("8", "4Gi"),
        ("8", "32Gi"),
        ("1", "536870912"),
        ("1", "0.5Gi"),
    ] {
        assert_valid(&limits(cpu, memory));
    }
    for (cpu, memory, needle) in [
        ("1", "4097Mi", "between 128Mi and 4Gi"),
        ("1", "127Mi", "between 128Mi and 4Gi"),
        ("2", "9Gi", "between 128Mi and 8Gi"),
        ("4", "512Mi", "between 2Gi and 16Gi"),
        ("4", "17Gi", "between 2Gi and 16Gi"),
        ("6", "3Gi", "between 4Gi and 24Gi"),
        ("8", "33Gi", "at most 32Gi"),
        ("1", "512MB", "not a memory quantity"),
        ("1", "lots", "not a memory quantity"),
    ] {
        let d = assert_violation(
            &limits(cpu, memory),
            "service.template.containers[0].resources.limits.memory",
        );
        assert!(d.contains(needle), "{cpu} {memory}: {d}");
    }
    // 4 CPU with the default memory (512Mi) is refused, as on Cloud Run.
    let s = with_container(json!({"resources": {"limits": {"cpu": "4"}}}));
    assert_violation(&s, "service.template.containers[0].resources.limits.memory");
    // The second generation needs 512Mi.
    let s = with_template(json!({
        "executionEnvironment": 2,
        "containers": [{"image": "x", "resources": {"limits": {"memory": "256Mi"}}}]
    }));
    let d = assert_violation(&s, "service.template.containers[0].resources.limits.memory");
    assert!(d.contains("second generation"), "{d}");
}

#[test]
fn only_cpu_and_memory_limits() {
    let s = with_container(json!({"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}));
    assert_violation(
        &s,
        r#"service.template.containers[0].resources.limits["nvidia.com/gpu"]"#,
    );
    let s = with_template(
        json!({"containers": [{"image": "x"}], "nodeSelector": {"accelerator": "nvidia-l4"}}),
    );
    assert_violation(&s, "service.template.nodeSelector");
}

#[test]
fn container_count_names_and_ingress() {
    let many: Vec<Value> = (0..11)
        .map(|i| if i == 0 { json!({"name": "c0", "image": "x", "ports": [{"containerPort": 8080}]}) } else { json!({"name": format!("c{i}"), "image": "x", "resources": {"limits": {"cpu": "0.08", "memory": "128Mi"}, "cpuIdle": true}}) })
        .collect();
    assert_violation(
        &with_template(json!({"containers": many})),
        "service.template.containers",
    );

    let two = |a: Value, b: Value| with_template(json!({"containers": [a, b]}));
    assert_valid(&two(
        json!({"name": "app", "image": "x", "ports": [{}]}),
        json!({"name": "side", "image": "y"}),
    ));
    let d = assert_violation(
        &two(
            json!({"name": "app", "image": "x"}),
            json!({"name": "side", "image": "y"}),
        ),
        "service.template.containers",
    );
    assert!(d.contains("0 have one"), "{d}");
    assert_violation(
        &two(
            json!({"name": "app", "image": "x", "ports": [{}]}),
            json!({"name": "side", "image": "y", "ports": [{}]}),
        ),
        "service.template.containers",
    );
    assert_violation(
        &two(
            json!({"name": "app", "image": "x", "ports": [{}]}),
            json!({"image": "y"}),
        ),
        "service.template.containers[1].name",
    );
    assert_violation(
        &two(
            json!({"name": "app", "image": "x", "ports": [{}]}),
            json!({"name": "app", "image": "y"}),
        ),
        "service.template.containers[1].name",
    );
    assert_violation(
        &with_container(json!({"name": "App"})),
        "service.template.containers[0].name",
    );
    // One container may go unnamed.
    assert_valid(&with_container(json!({"name": ""})));
    // The instance in total: at most 8 CPU.
    let big = |name: &str, port: bool| {
        let mut c = json!({"name": name, "image": "x", "resources": {"limits": {"cpu": "8", "memory": "4Gi"}}});
        if port {
            c["ports"] = json!([{}]);
        }
        c
    };
    let d = assert_violation(
        &two(big("a", true), big("b", false)),
        "service.template.containers",
    );
    assert!(d.contains("more than 8"), "{d}");
}

#[test]
fn ports() {
    assert_violation(
        &with_container(json!({"ports": [{}, {}]})),
        "service.template.containers[0].ports",
    );
    assert_violation(
        &with_container(json!({"ports": [{"name": "http2"}]})),
        "service.template.containers[0].ports[0].name",
    );
    assert_violation(
        &with_container(json!({"ports": [{"containerPort": 70000}]})),
        "service.template.containers[0].ports[0].containerPort",
    );
    assert_violation(
        &with_container(json!({"ports": [{"containerPort": -1}]})),
        "service.template.containers[0].ports[0].containerPort",
    );
    assert_valid(&with_container(
        json!({"ports": [{"name": "h2c", "containerPort": 50051}]}),
    ));
}

#[test]
fn depends_on() {
    let t = |deps_a: Value, deps_b: Value| {
        with_template(json!({"containers": [
            {"name": "a", "image": "x", "ports": [{}], "dependsOn": deps_a},
            {"name": "b", "image": "y", "dependsOn": deps_b}
        ]}))
    };
    assert_valid(&t(json!(["b"]), json!([])));
    assert_violation(
        &t(json!(["c"]), json!([])),
        "service.template.containers[0].dependsOn[0]",
    );
    assert_violation(
        &t(json!([]), json!(["b"])),
        "service.template.containers[1].dependsOn[0]",
    );
    let d = assert_violation(
        &t(json!(["b"]), json!(["a"])),
        "service.template.containers[0].dependsOn",
    );
    assert!(d.contains("a -> b -> a"), "{d}");
}

#[test]
fn image_env_and_working_dir() {
    assert_violation(
        &with_template(json!({"containers": [{}]})),
        "service.template.containers[0].image",
    );
    assert_violation(
        &with_container(json!({"image": "a b"})),
        "service.template.containers[0].image",
    );
    assert_violation(
        &with_container(json!({"workingDir": "srv"})),
        "service.template.containers[0].workingDir",
    );
    for reserved in ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"] {
        let d = assert_violation(
            &with_container(json!({"env": [{"name": reserved, "value": "1"}]})),
            "service.template.containers[0].env[0].name",
        );
        assert!(d.contains("reserved"), "{d}");
    }
    assert_violation(
        &with_container(json!({"env": [{"name": "A=B", "value": "1"}]})),
        "service.template.containers[0].env[0].name",
    );
    assert_violation(
        &with_container(json!({"env": [{"value": "1"}]})),
        "service.template.containers[0].env[0].name",
    );
    assert_valid(&with_container(
        json!({"env": [{"name": "A", "value": ""}, {"name": "B"}]}),
    ));
}

#[test]
fn secret_env() {
    let env =
        |source: Value| with_container(json!({"env": [{"name": "S", "valueSource": source}]}));
    let p = "service.template.containers[0].env[0].valueSource.secretKeyRef";
    for version in ["", "latest", "1", "12"] {
        assert_valid(&env(
            json!({"secretKeyRef": {"secret": "db-pass", "version": version}}),
        ));
    }
    assert_valid(&env(json!({"secretKeyRef": {"secret": "db-pass"}})));
    assert_valid(&env(
        json!({"secretKeyRef": {"secret": "projects/other/secrets/DB_PASS", "version": "3"}}),
    ));
    assert_violation(&env(json!({})), p);
    assert_violation(
        &env(json!({"secretKeyRef": {"version": "1"}})),
        &format!("{p}.secret"),
    );
    for bad in ["a.b", "projects/x/secrets", "projects/x/keys/y", "a/b"] {
        assert_violation(
            &env(json!({"secretKeyRef": {"secret": bad}})),
            &format!("{p}.secret"),
        );
    }
    for bad in ["0", "-1", "v1", "current"] {
        let d = assert_violation(
            &env(json!({"secretKeyRef": {"secret": "s", "version": bad}})),
            &format!("{p}.version"),
        );
        assert!(d.contains("latest"), "{d}");
    }
    assert_violation(
        &with_container(
            json!({"env": [{"name": "S", "value": "x", "valueSource": {"secretKeyRef": {"secret": "s"}}}]}),
        ),
        "service.template.containers[0].env[0]",
    );
}

#[test]
fn secret_volumes() {
    let t = |secret: Value| {
        with_template(json!({
            "volumes": [{"name": "creds", "secret": secret}],
            "containers": [{"image": "x", "volumeMounts": [{"name": "creds", "mountPath": "/creds"}]}]
        }))
    };
    let p = "service.template.volumes[0].secret";
    assert_valid(&t(json!({"secret": "db-pass"})));
    assert_valid(&t(json!({
        "secret": "projects/p/secrets/tls",
        "defaultMode": 0o444,
        "items": [
            {"path": "tls.crt", "version": "latest", "mode": 0o400},
            {"path": "old/tls.crt", "version": "2"},
            {"path": "any"}
        ]
    })));
    assert_violation(&t(json!({})), &format!("{p}.secret"));
    assert_violation(
        &t(json!({"secret": "s", "defaultMode": 0o1000})),
        &format!("{p}.defaultMode"),
    );
    assert_violation(
        &t(json!({"secret": "s", "defaultMode": -1})),
        &format!("{p}.defaultMode"),
    );
    assert_violation(
        &t(json!({"secret": "s", "items": [{"path": "a", "mode": 512}]})),
        &format!("{p}.items[0].mode"),
    );
    for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"] {
        assert_violation(
            &t(json!({"secret": "s", "items": [{"path": bad}]})),
            &format!("{p}.items[0].path"),
        );
    }
    assert_violation(
        &t(json!({"secret": "s", "items": [{"path": "a"}, {"path": "a", "version": "1"}]})),
        &format!("{p}.items[1].path"),
    );
    assert_violation(
        &t(json!({"secret": "s", "items": [{"path": "a", "version": "alias"}]})),
        &format!("{p}.items[0].version"),
    );
}

#[test]
fn ingress_and_audiences() {
    for ok in [
        "INGRESS_TRAFFIC_ALL",
        "INGRESS_TRAFFIC_INTERNAL_ONLY",
        "INGRESS_TRAFFIC_NONE",
    ] {
        assert_valid(&service(
            json!({"ingress": ok, "template": {"containers": [{"image": "x"}]}}),
        ));
    }
    let d = assert_violation(
        &service(json!({
            "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            "template": {"containers": [{"image": "x"}]}
        })),
        "service.ingress",
    );
    assert!(d.contains("no load balancer"), "{d}");
    assert_valid(&service(json!({
        "customAudiences": ["https://api.example.com", "my-audience"],
        "template": {"containers": [{"image": "x"}]}
    })));
    assert_violation(
        &service(json!({
            "customAudiences": ["a", " "],
            "template": {"containers": [{"image": "x"}]}
        })),
        "service.customAudiences[1]",
    );
    let many: Vec<String> = (0..101).map(|i| format!("aud-{i}")).collect();
    assert_violation(
        &service(json!({"customAudiences": many, "template": {"containers": [{"image": "x"}]}})),
        "service.customAudiences",
    );
}

#[test]
fn volumes_and_mounts() {
    let t = |volumes: Value, mounts: Value| {
        with_template(
            json!({"volumes": volumes, "containers": [{"image": "x", "volumeMounts": mounts}]}),
        )
    };
    let v = json!([{"name": "scratch", "emptyDir": {"medium": "MEMORY", "sizeLimit": "64Mi"}}]);
    assert_valid(&t(
        v.clone(),
        json!([{"name": "scratch", "mountPath": "/scratch"}]),
    ));
    assert_violation(
        &t(
            v.clone(),
            json!([{"name": "other", "mountPath": "/scratch"}]),
        ),
        "service.template.containers[0].volumeMounts[0].name",
    );
    assert_violation(
        &t(
            v.clone(),
            json!([{"name": "scratch", "mountPath": "scratch"}]),
        ),
        "service.template.containers[0].volumeMounts[0].mountPath",
    );
    assert_violation(
        &t(v.clone(), json!([{"name": "scratch", "mountPath": "/a:b"}])),
        "service.template.containers[0].volumeMounts[0].mountPath",
    );
    for reserved in ["/", "/proc", "/sys/fs", "/dev/"] {
        assert_violation(
            &t(
                v.clone(),
                json!([{"name": "scratch", "mountPath": reserved}]),
            ),
            "service.template.containers[0].volumeMounts[0].mountPath",
        );
    }
    assert_violation(
        &t(
            v.clone(),
            json!([{"name": "scratch", "mountPath": "/a"}, {"name": "scratch", "mountPath": "/a/"}]),
        ),
        "service.template.containers[0].volumeMounts[1].mountPath",
    );
    assert_valid(&t(
        json!([{"name": "s", "secret": {"secret": "x"}}]),
        json!([]),
    ));
    assert_violation(
        &t(
            json!([{"name": "s", "cloudSqlInstance": {"instances": ["p:r:i"]}}]),
            json!([]),
        ),
        "service.template.volumes[0].cloudSqlInstance",
    );
    assert_violation(
        &t(json!([{"name": "s"}]), json!([])),
        "service.template.volumes[0]",
    );
    assert_violation(
        &t(json!([{"emptyDir": {}}]), json!([])),
        "service.template.volumes[0].name",
    );
    assert_violation(
        &t(
            json!([{"name": "s", "emptyDir": {}}, {"name": "s", "emptyDir": {}}]),
            json!([]),
        ),
        "service.template.volumes[1].name",
    );
    assert_violation(
        &t(
            json!([{"name": "s", "emptyDir": {"sizeLimit": "huge"}}]),
            json!([]),
        ),
        "service.template.volumes[0].emptyDir.sizeLimit",
    );
}

#[test]
fn probes() {
    let probe = |kind: &str, p: Value| with_container(json!({ kind: p }));
    assert_valid(&probe(
        "startupProbe",
        json!({"httpGet": {"path": "/ready"}, "periodSeconds": 240, "timeoutSeconds": 240, "initialDelaySeconds": 240}),
    ));
    assert_valid(&probe(
        "livenessProbe",
        json!({"grpc": {}, "periodSeconds": 3600, "initialDelaySeconds": 3600}),
    ));
    assert_violation(
        &probe("startupProbe", json!({})),
        "service.template.containers[0].startupProbe",
    );
    assert_violation(
        &probe("startupProbe", json!({"httpGet": {}, "tcpSocket": {}})),
        "service.template.containers[0].startupProbe",
    );
    assert_violation(
        &probe("livenessProbe", json!({"tcpSocket": {}})),
        "service.template.containers[0].livenessProbe.tcpSocket",
    );
    assert_violation(
        &probe(
            "startupProbe",
            json!({"tcpSocket": {}, "periodSeconds": 241}),
        ),
        "service.template.containers[0].startupProbe.periodSeconds",
    );
    assert_violation(
        &probe(
            "startupProbe",
            json!({"tcpSocket": {}, "initialDelaySeconds": 241}),
        ),
        "service.template.containers[0].startupProbe.initialDelaySeconds",
    );
    assert_violation(
        &probe(
            "livenessProbe",
            json!({"httpGet": {}, "initialDelaySeconds": 3601}),
        ),
        "service.template.containers[0].livenessProbe.initialDelaySeconds",
    );
    assert_violation(
        &probe(
            "livenessProbe",
            json!({"httpGet": {}, "timeoutSeconds": 11}),
        ),
        "service.template.containers[0].livenessProbe.timeoutSeconds",
    );
    assert_violation(
        &probe(
            "livenessProbe",
            json!({"httpGet": {}, "timeoutSeconds": 3601, "periodSeconds": 3600}),
        ),
        "service.template.containers[0].livenessProbe.timeoutSeconds",
    );
    assert_violation(
        &probe(
            "livenessProbe",
            json!({"httpGet": {}, "failureThreshold": -1}),
        ),
        "service.template.containers[0].livenessProbe.failureThreshold",
    );
    assert_violation(
        &probe("livenessProbe", json!({"httpGet": {"path": "healthz"}})),
        "service.template.containers[0].livenessProbe.httpGet.path",
    );
    assert_violation(
        &probe("livenessProbe", json!({"httpGet": {"port": 65536}})),
        "service.template.containers[0].livenessProbe.httpGet.port",
    );
    assert_violation(
        &probe(
            "livenessProbe",
            json!({"httpGet": {"httpHeaders": [{"name": "Bad Header", "value": "x"}]}}),
        ),
        "service.template.containers[0].livenessProbe.httpGet.httpHeaders[0].name",
    );
    // A sidecar exposes no port: its probes must name one.
    let sidecar = |p: Value| {
        with_template(json!({"containers": [
            {"name": "app", "image": "x", "ports": [{}]},
            {"name": "side", "image": "y", "startupProbe": p}
        ]}))
    };
    assert_valid(&sidecar(json!({"tcpSocket": {"port": 7000}})));
    assert_violation(
        &sidecar(json!({"tcpSocket": {}})),
        "service.template.containers[1].startupProbe.tcpSocket.port",
    );
    assert_violation(
        &sidecar(json!({"grpc": {}})),
        "service.template.containers[1].startupProbe.grpc.port",
    );
}

#[test]
fn traffic() {
    let t = |traffic: Value| {
        service(json!({"template": {"containers": [{"image": "x"}]}, "traffic": traffic}))
    };
    assert_valid(&t(json!([])));
    assert_valid(&t(
        json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]),
    ));
    assert_valid(&t(json!([
        {"type": 2, "revision": "hello-00001-abc", "percent": 50},
        {"revision": "hello-00002-def", "percent": 50, "tag": "blue"},
        {"type": 1, "tag": "latest"}
    ])));
    let d = assert_violation(&t(json!([{"type": 1, "percent": 90}])), "service.traffic");
    assert!(d.contains("100, not 90"), "{d}");
    assert_violation(
        &t(json!([{"type": 1, "percent": 0, "tag": "x"}])),
        "service.traffic",
    );
    assert_violation(
        &t(json!([{"type": 1, "percent": 101}])),
        "service.traffic[0].percent",
    );
    assert_violation(
        &t(json!([{"type": 1, "revision": "hello-1", "percent": 100}])),
        "service.traffic[0].revision",
    );
    assert_violation(
        &t(json!([{"type": 2, "percent": 100}])),
        "service.traffic[0].revision",
    );
    assert_violation(
        &t(json!([{"type": 2, "revision": "other-00001-abc", "percent": 100}])),
        "service.traffic[0].revision",
    );
    assert_violation(
        &t(json!([{"type": 2, "revision": "Hello-1", "percent": 100}])),
        "service.traffic[0].revision",
    );
    // Tags: unique DNS labels starting with a letter, no "---", with the service ≤ 46.
    assert_violation(
        &t(json!([{"type": 1, "percent": 100, "tag": "blue"}, {"type": 1, "tag": "blue"}])),
        "service.traffic[1].tag",
    );
    for bad in ["Blue", "1blue", "blue-", "bl_ue", "a---b", &"t".repeat(42)] {
        assert_violation(
            &t(json!([{"type": 1, "percent": 100, "tag": bad}])),
            "service.traffic[0].tag",
        );
    }
    assert_valid(&t(
        json!([{"type": 1, "percent": 100, "tag": "t".repeat(41)}]),
    ));
}

#[test]
fn every_violation_is_reported_at_once() {
    let s = service(json!({
        "template": {
            "timeout": "4000s",
            "maxInstanceRequestConcurrency": 2000,
            "containers": [{"resources": {"limits": {"cpu": "3"}}, "ports": [{"name": "spdy"}]}]
        },
        "traffic": [{"type": 1, "percent": 50}]
    }));
    let mut got = fields(&s);
    got.sort();
    assert_eq!(
        got,
        [
            "service.template.containers[0].image",
            "service.template.containers[0].ports[0].name",
            "service.template.containers[0].resources.limits.cpu",
            "service.template.maxInstanceRequestConcurrency",
            "service.template.timeout",
            "service.traffic",
        ]
    );
    let status = Status::from(validate_service(&s).unwrap_err());
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.http_status(), 400);
    assert!(
        status.message.starts_with("6 invalid fields: "),
        "{}",
        status.message
    );
    assert_eq!(status.bad_request().unwrap().field_violations.len(), 6);
}

#[test]
fn other_roots_for_paths() {
    let mut s = with_container(json!({"image": ""}));
    s.name = NAME.into();
    let b = api::validate::validate_service_at(&s, "").unwrap_err();
    assert_eq!(b.field_violations[0].field, "template.containers[0].image");
}

#[test]
fn job_schedules_are_checked_by_name() {
    let mut job: api::Job = api::json::from_value(serde_json::json!({
        "name": "projects/p/locations/l/jobs/nightly",
        "annotations": {"homerun.dev/schedules": "[{\"cron\": \"0 3 * * *\", \"timeZone\": \"Nowhere/City\"}]"},
        "template": {"template": {"containers": [{"image": "busybox"}]}},
    }))
    .unwrap();
    api::defaults::apply_job_defaults(&mut job);
    let err = api::validate::validate_job(&job).unwrap_err();
    let v = &err.field_violations[0];
    assert_eq!(v.field, "job.annotations[\"homerun.dev/schedules\"]");
    assert!(v.description.contains("Nowhere/City"), "{}", v.description);
    job.annotations.insert(
        "homerun.dev/schedules".into(),
        "[{\"cron\": \"0 3 * * *\", \"timeZone\": \"Europe/Paris\"}]".into(),
    );
    api::validate::validate_job(&job).unwrap();
}
