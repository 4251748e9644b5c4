//! Identity and access end to end, under runc with the probe: the metadata server as an
//! instance sees it (and as nothing else may), the tokens it hands out used against the
//! Admin API and the ingress, invoker IAM and ingress settings on services, service to
//! service with an ID token from the metadata server, and secrets given to containers as
//! environment variables and files while appearing in no API answer, log or record.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use testkit::platform::{Platform, FAST_SCALING, PATIENCE};

fn platform(net: u8) -> Option<Platform> {
    if !testkit::require(&["runc", "ip", "iptables"], true) {
        return None;
    }
    Some(Platform::start(
        env!("CARGO_BIN_EXE_homerun"),
        net,
        FAST_SCALING,
    ))
}

fn image(name: &str) -> String {
    let cat = testkit::catalogue().unwrap();
    format!("oci:{}", cat.image(name).path.display())
}

fn ok_response(op: &Value) -> &Value {
    assert!(op["error"].is_null(), "operation failed: {op}");
    &op["response"]
}

fn stop_clean(mut p: Platform) {
    let status = p.terminate();
    assert!(status.success(), "homerun exited {status}:\n{}", p.logs());
    let left = p.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}\n{}", p.logs());
}

/// The probe's JSON answer through the ingress.
fn probe_json(p: &Platform, service: &str, path: &str) -> Value {
    let r = p.get(service, path);
    assert_eq!(r.status, 200, "{service}{path}: {}", r.text());
    r.json()
}

/// A metadata path as the instance of `service` reads it (status and body).
fn metadata(p: &Platform, service: &str, path: &str) -> (u64, String) {
    let v = probe_json(p, service, &format!("/metadata?path={path}"));
    (
        v["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("{path}: {v}")),
        v["body"].as_str().unwrap_or_default().to_string(),
    )
}

/// Repeats `f` until it holds (the router's table follows IAM changes within a pass).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not after {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn service_url(p: &Platform, id: &str) -> String {
    format!("http://{id}.localhost:{}", p.ingress.port())
}

/// An ID token for `email` with `audience`, minted through the IAM Credentials API by the
/// admin.
fn id_token(p: &Platform, email: &str, audience: &str) -> String {
    let (status, t) = p.call(
        "POST",
        &format!("/v1/projects/-/serviceAccounts/{email}:generateIdToken"),
        Some(&json!({"audience": audience, "includeEmail": true})),
    );
    assert_eq!(status, 200, "{t}");
    t["token"].as_str().unwrap().to_string()
}

/// `path`: the resource's path (`/v2/projects/.../services/s`).
fn set_policy(p: &Platform, path: &str, bindings: Value) -> (u16, Value) {
    let (status, current) = p.call("GET", &format!("{path}:getIamPolicy"), None);
    assert_eq!(status, 200, "{current}");
    let policy = json!({"bindings": bindings, "etag": current["etag"]});
    p.call(
        "POST",
        &format!("{path}:setIamPolicy"),
        Some(&json!({ "policy": policy })),
    )
}

#[test]
fn the_metadata_server_answers_each_instance_its_own_identity() {
    let Some(p) = platform(216) else { return };
    let email = "runner@local.iam.gserviceaccount.com";
    ok_response(&p.create_service(
        "who",
        &json!({"template": {
            "serviceAccount": email,
            "containers": [{"image": image("probe")}],
        }}),
    ));
    // A second service, left on the default account, to tell identities apart.
    ok_response(&p.create_service(
        "other",
        &json!({"template": {"containers": [{"image": image("probe")}]}}),
    ));
    let number = api::naming::project_number("local");
    let gateway = p.gateway().to_string();

    let report = probe_json(&p, "who", "/");
    assert_eq!(report["env"]["GCE_METADATA_HOST"], gateway.as_str());
    assert_eq!(report["env"]["GCE_METADATA_IP"], gateway.as_str());
    let hosts = probe_json(&p, "who", "/file?path=/etc/hosts");
    let line = format!("{gateway}\tmetadata.google.internal metadata");
    assert!(
        hosts["contents"].as_str().unwrap().contains(&line),
        "{hosts}"
    );

    for (path, want) in [
        ("project/project-id", "local".to_string()),
        ("project/numeric-project-id", number.to_string()),
        (
            "instance/region",
            format!("projects/{number}/regions/local"),
        ),
        ("instance/zone", format!("projects/{number}/zones/local-1")),
        ("instance/service-accounts/default/email", email.to_string()),
    ] {
        assert_eq!(metadata(&p, "who", path), (200, want), "{path}");
    }
    let (status, other_email) = metadata(&p, "other", "instance/service-accounts/default/email");
    assert_eq!(status, 200);
    assert_eq!(
        other_email,
        format!("{number}-compute@developer.gserviceaccount.com")
    );
    let (_, id_a) = metadata(&p, "who", "instance/id");
    let (_, id_b) = metadata(&p, "other", "instance/id");
    assert_eq!(id_a.len(), 64, "{id_a}");
    assert_ne!(id_a, id_b);
    let (status, tree) = metadata(&p, "who", "?recursive=true");
    assert_eq!(status, 200);
    let tree: Value = serde_json::from_str(&tree).unwrap();
    assert_eq!(tree["project"]["projectId"], "local");
    // Another account's entries are not this instance's.
    let (status, _) = metadata(
        &p,
        "who",
        &format!("instance/service-accounts/{other_email}/email"),
    );
    assert_eq!(status, 404);

    // An ID token, verified by a standard JWT library against the published keys.
    let audience = "https://example.test/aud";
    let (status, token) = metadata(
        &p,
        "who",
        &format!("instance/service-accounts/default/identity?audience={audience}"),
    );
    assert_eq!(status, 200, "{token}");
    let discovery = testkit::http::get(p.api, "/.well-known/openid-configuration", PATIENCE)
        .unwrap()
        .json();
    let issuer = discovery["issuer"].as_str().unwrap();
    assert_eq!(issuer, format!("http://{}", p.api));
    let jwks_path = discovery["jwks_uri"]
        .as_str()
        .unwrap()
        .strip_prefix(issuer)
        .unwrap()
        .to_string();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(
        testkit::http::get(p.api, &jwks_path, PATIENCE)
            .unwrap()
            .json(),
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["email"], email);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["sub"], claims["azp"]);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    // The access token speaks for the account at the Admin API: nothing until the
    // project grants it a role.
    let (status, body) = metadata(&p, "who", "instance/service-accounts/default/token");
    assert_eq!(status, 200, "{body}");
    let access: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(access["token_type"], "Bearer");
    assert!(access["expires_in"].as_u64().unwrap() > 3500);
    let bearer = format!("Bearer {}", access["access_token"].as_str().unwrap());
    let services = format!("{}/services", p.location());
    let (status, e) = p.call_as(&bearer, "GET", &services, None);
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{e}"
    );
    let (status, e) = p.call_as("", "GET", &services, None);
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{e}"
    );
    let (status, e) = p.call_as("Bearer hra.not-the-token", "GET", &services, None);
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{e}"
    );
    // An ID token is for the service it names, not for the API.
    let (status, e) = p.call_as(&format!("Bearer {token}"), "GET", &services, None);
    assert_eq!(
        (status, e["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{e}"
    );
    let (status, current) = p.call("POST", "/v1/projects/local:getIamPolicy", Some(&json!({})));
    assert_eq!(status, 200, "{current}");
    let (status, set) = p.call(
        "POST",
        "/v1/projects/local:setIamPolicy",
        Some(&json!({"policy": {
            "bindings": [{"role": "roles/run.developer", "members": [format!("serviceAccount:{email}")]}],
            "etag": current["etag"],
        }})),
    );
    assert_eq!(status, 200, "{set}");
    let (status, list) = p.call_as(&bearer, "GET", &services, None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["services"].as_array().unwrap().len(), 2);
    // A developer may not change who may invoke.
    let (status, e) = p.call_as(
        &bearer,
        "POST",
        &format!("{}/services/who:setIamPolicy", p.location()),
        Some(&json!({"policy": {"bindings": []}})),
    );
    assert_eq!(status, 403, "{e}");

    // Nothing but an instance gets an answer: not the host, not without the header.
    let from_host = testkit::http::request(
        std::net::SocketAddr::new(p.gateway().into(), 80),
        "GET",
        "/computeMetadata/v1/project/project-id",
        &[("Metadata-Flavor", "Google")],
        b"",
        PATIENCE,
    )
    .unwrap();
    assert_eq!(from_host.status, 403, "{}", from_host.text());
    assert_eq!(from_host.header("metadata-flavor"), Some("Google"));
    let bare = probe_json(
        &p,
        "who",
        &format!("/fetch?url=http://{gateway}/computeMetadata/v1/project/project-id"),
    );
    assert_eq!(bare["status"], 403, "{bare}");
    stop_clean(p);
}

#[test]
fn invoker_iam_and_ingress_guard_services() {
    let Some(p) = platform(217) else { return };
    let caller = "caller@local.iam.gserviceaccount.com";
    let private = |id: &str, ingress: &str| {
        let mut s = json!({
            "invokerIamDisabled": false,
            "template": {"containers": [{"image": image("probe")}]},
        });
        if !ingress.is_empty() {
            s["ingress"] = json!(ingress);
        }
        ok_response(&p.create_service(id, &s));
    };
    private("b", "");
    ok_response(&p.create_service(
        "a",
        &json!({"template": {"serviceAccount": caller, "containers": [{"image": image("probe")}]}}),
    ));
    let b = format!("{}/services/b", p.location());
    let b_url = service_url(&p, "b");

    // No credential: 403; a token that is not one: 401; Cloud Run's pages.
    let r = p.get("b", "/");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Error: Forbidden"), "{}", r.text());
    let r = p.request_with(
        "b.localhost",
        "GET",
        "/",
        &[("Authorization", "Bearer nonsense")],
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some());

    // A valid ID token of an account without the role: 403; with it: 200.
    let token = id_token(&p, caller, &b_url);
    let bearer = format!("Bearer {token}");
    let r = p.request_with(
        "b.localhost",
        "GET",
        "/headers",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let (status, e) = set_policy(
        &p,
        &b,
        json!([{"role": "roles/run.invoker", "members": [format!("serviceAccount:{caller}")]}]),
    );
    assert_eq!(status, 200, "{e}");
    eventually("the invoker binding reaches the router", || {
        p.request_with(
            "b.localhost",
            "GET",
            "/headers",
            &[("Authorization", &bearer)],
        )
        .status
            == 200
    });
    // The container sees the token without its signature, as on Cloud Run.
    let seen = p
        .request_with(
            "b.localhost",
            "GET",
            "/headers",
            &[("Authorization", &bearer)],
        )
        .json();
    let forwarded = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "authorization")
        .and_then(|h| h[1].as_str())
        .unwrap_or_else(|| panic!("{seen}"));
    assert!(
        forwarded.ends_with(".SIGNATURE_REMOVED_BY_GOOGLE"),
        "{forwarded}"
    );
    assert!(!forwarded.contains(token.rsplit('.').next().unwrap()));
    // Another audience, an access token: 401.
    let elsewhere = id_token(&p, caller, "http://elsewhere.test");
    let r = p.request_with(
        "b.localhost",
        "GET",
        "/",
        &[("Authorization", &format!("Bearer {elsewhere}"))],
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let (status, access) = p.call(
        "POST",
        &format!("/v1/projects/-/serviceAccounts/{caller}:generateAccessToken"),
        Some(&json!({"scope": ["https://www.googleapis.com/auth/cloud-platform"]})),
    );
    assert_eq!(status, 200, "{access}");
    let r = p.request_with(
        "b.localhost",
        "GET",
        "/",
        &[(
            "Authorization",
            &format!("Bearer {}", access["accessToken"].as_str().unwrap()),
        )],
    );
    assert_eq!(r.status, 401, "{}", r.text());

    // Service to service: a's instance takes an ID token from its metadata server and
    // calls b through the ingress on the bridge; without the token it gets 403.
    let internal = format!("http://{}:{}", p.gateway(), p.ingress.port());
    let via_a = |auth: &str| {
        probe_json(
            &p,
            "a",
            &format!("/fetch?url={internal}/headers&host=b.localhost&auth={auth}&audience={b_url}"),
        )
    };
    let with = via_a("id-token");
    assert_eq!(with["status"], 200, "{with}");
    let without = via_a("none");
    assert_eq!(without["status"], 403, "{without}");

    // An etag that is no longer current is refused.
    let (status, e) = p.call(
        "POST",
        &format!("{b}:setIamPolicy"),
        Some(&json!({"policy": {"bindings": [], "etag": "AAAAAAAAAAE="}})),
    );
    assert_eq!(status, 409, "{e}");
    // allUsers makes it public.
    let (status, e) = set_policy(
        &p,
        &b,
        json!([{"role": "roles/run.invoker", "members": ["allUsers"]}]),
    );
    assert_eq!(status, 200, "{e}");
    eventually("allUsers opens b", || p.get("b", "/").status == 200);

    // Ingress: internal only answers instances (404 from the host); none answers no one.
    ok_response(&p.create_service(
        "inner",
        &json!({"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY",
                "template": {"containers": [{"image": image("probe")}]}}),
    ));
    let r = p.get("inner", "/");
    assert_eq!(r.status, 404, "{}", r.text());
    let from_a = probe_json(
        &p,
        "a",
        &format!("/fetch?url={internal}/&host=inner.localhost"),
    );
    assert_eq!(from_a["status"], 200, "{from_a}");
    ok_response(&p.update_service(
        "inner",
        "ingress",
        &json!({"ingress": "INGRESS_TRAFFIC_NONE"}),
    ));
    eventually("ingress none closes inner", || {
        p.get("inner", "/").status == 404
    });
    let from_a = probe_json(
        &p,
        "a",
        &format!("/fetch?url={internal}/&host=inner.localhost"),
    );
    assert_eq!(from_a["status"], 404, "{from_a}");
    stop_clean(p);
}

#[test]
fn secrets_reach_containers_and_nothing_else() {
    let Some(p) = platform(218) else { return };
    let values = ["s3cr3t-first-Qx7", "s3cr3t-second-Zp4"];
    let (status, s) = p.call(
        "POST",
        "/v1/projects/local/secrets?secretId=db-pass",
        Some(&json!({"replication": {"automatic": {}}})),
    );
    assert_eq!(status, 200, "{s}");
    for v in values {
        let data = base64::engine::general_purpose::STANDARD.encode(v);
        let (status, version) = p.call(
            "POST",
            "/v1/projects/local/secrets/db-pass:addVersion",
            Some(&json!({"payload": {"data": data}})),
        );
        assert_eq!(status, 200, "{version}");
    }
    let holder = json!({"template": {
        "containers": [{
            "image": image("probe"),
            "env": [{"name": "DB_PASS", "valueSource": {"secretKeyRef": {"secret": "db-pass", "version": "1"}}}],
            "volumeMounts": [{"name": "creds", "mountPath": "/secrets"}],
        }],
        "volumes": [{"name": "creds", "secret": {"secret": "db-pass", "items": [{"path": "pass", "version": "latest"}]}}],
    }});
    // The revision's service account must be allowed to read the secret, as on Cloud Run.
    let op = p.create_service("holder", &holder);
    let error = op["error"].to_string();
    assert!(
        error.contains("roles/secretmanager.secretAccessor") && error.contains("db-pass"),
        "{op}"
    );
    let account = api::naming::default_service_account("local");
    let (status, e) = set_policy(
        &p,
        "/v1/projects/local/secrets/db-pass",
        json!([{"role": "roles/secretmanager.secretAccessor", "members": [format!("serviceAccount:{account}")]}]),
    );
    assert_eq!(status, 200, "{e}");
    // Deployed again (a new revision: an identical template would make none).
    let mut again = holder.clone();
    again["template"]["labels"] = json!({"attempt": "2"});
    ok_response(&p.update_service("holder", "", &again));
    let report = probe_json(&p, "holder", "/");
    assert_eq!(report["env"]["DB_PASS"], values[0]);
    let file = probe_json(&p, "holder", "/file?path=/secrets/pass");
    assert_eq!(file["contents"], values[1], "{file}");
    assert_eq!(file["writable"], false, "{file}");

    // A revision naming a secret that does not exist fails, naming it; traffic stays.
    let op = p.update_service(
        "holder",
        "",
        &json!({"template": {"containers": [{
            "image": image("probe"),
            "env": [{"name": "X", "valueSource": {"secretKeyRef": {"secret": "missing", "version": "latest"}}}],
        }]}}),
    );
    let error = op["error"].to_string();
    assert!(error.contains("missing"), "{op}");
    assert_eq!(probe_json(&p, "holder", "/")["env"]["DB_PASS"], values[0]);

    // The values appear in no answer of the API, in no log, and not in the records on
    // disk (sealed there).
    let mut answers = vec![op.to_string()];
    for path in [
        format!("{}/services/holder", p.location()),
        format!("{}/services/holder/revisions", p.location()),
        format!("{}/operations", p.location()),
        "/v1/projects/local/secrets".to_string(),
        "/v1/projects/local/secrets/db-pass".to_string(),
        "/v1/projects/local/secrets/db-pass/versions".to_string(),
        "/v1/projects/local/secrets/db-pass/versions/latest".to_string(),
    ] {
        let (status, body) = p.call("GET", &path, None);
        assert_eq!(status, 200, "{path}: {body}");
        answers.push(body.to_string());
    }
    answers.push(p.logs());
    let mut records = Vec::new();
    for entry in std::fs::read_dir(p.data.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("homerun.db") {
            records.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    assert!(!records.is_empty());
    answers.push(String::from_utf8_lossy(&records).into_owned());
    for v in values {
        for (i, a) in answers.iter().enumerate() {
            assert!(!a.contains(v), "answer {i} holds the secret value {v}");
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(v);
        for a in &answers {
            assert!(!a.contains(&encoded), "an answer holds {v} in base64");
        }
    }
    stop_clean(p);
}

#[test]
fn a_job_task_has_its_identity_and_secrets() {
    let Some(p) = platform(219) else { return };
    let account = "tasker@local.iam.gserviceaccount.com";
    let (status, s) = p.call(
        "POST",
        "/v1/projects/local/secrets?secretId=task-key",
        Some(&json!({"replication": {"automatic": {}}})),
    );
    assert_eq!(status, 200, "{s}");
    let data = base64::engine::general_purpose::STANDARD.encode("task-secret-Wq9");
    let (status, v) = p.call(
        "POST",
        "/v1/projects/local/secrets/task-key:addVersion",
        Some(&json!({"payload": {"data": data}})),
    );
    assert_eq!(status, 200, "{v}");
    let (status, e) = set_policy(
        &p,
        "/v1/projects/local/secrets/task-key",
        json!([{"role": "roles/secretmanager.secretAccessor", "members": [format!("serviceAccount:{account}")]}]),
    );
    assert_eq!(status, 200, "{e}");
    let job = json!({"template": {"taskCount": 2, "template": {
        "serviceAccount": account,
        "maxRetries": 0,
        "containers": [{
            "image": image("probe"),
            "args": ["job"],
            "env": [
                {"name": "PROBE_METADATA", "value": "instance/service-accounts/default/email,project/project-id"},
                {"name": "TASK_KEY", "valueSource": {"secretKeyRef": {"secret": "task-key", "version": "latest"}}},
            ],
        }],
    }}});
    let (status, op) = p.call(
        "POST",
        &format!("{}/jobs?jobId=who", p.location()),
        Some(&job),
    );
    assert_eq!(status, 200, "{op}");
    ok_response(&p.wait(&op));
    let (status, op) = p.call(
        "POST",
        &format!("{}/jobs/who:run", p.location()),
        Some(&json!({})),
    );
    assert_eq!(status, 200, "{op}");
    let done = p.wait(&op);
    let execution = ok_response(&done)["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{done}"))
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let (status, logs) = p.call(
        "GET",
        &format!("/homerun/v1/projects/local/locations/local/jobs/who/executions/{execution}/logs"),
        None,
    );
    assert_eq!(status, 200, "{logs}");
    let lines: Vec<Value> = logs["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let text = e["text"].as_str().unwrap_or_default();
            serde_json::from_str::<Value>(text).ok()
        })
        .collect();
    let answers: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("metadata").is_some())
        .collect();
    assert_eq!(
        answers.len(),
        4,
        "two answers from each of two tasks: {logs}"
    );
    for a in &answers {
        assert_eq!(a["status"], 200, "{a}");
        let want = if a["metadata"] == "project/project-id" {
            "local"
        } else {
            account
        };
        assert_eq!(a["body"], want, "{a}");
    }
    // Each task saw the secret in its environment (the probe prints its env).
    let envs: Vec<&Value> = lines.iter().filter(|l| l["probe"] == "job").collect();
    assert_eq!(envs.len(), 2, "{logs}");
    for e in envs {
        assert_eq!(e["env"]["TASK_KEY"], "task-secret-Wq9", "{e}");
        assert_eq!(
            e["env"]["GCE_METADATA_HOST"],
            p.gateway().to_string(),
            "{e}"
        );
    }
    stop_clean(p);
}
