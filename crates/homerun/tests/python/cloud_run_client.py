#!/usr/bin/env python3
"""homerun's Admin API driven by Google's official Python client.

`google.cloud.run_v2` (pip package `google-cloud-run`) over REST, with the admin token
as a token credential (`google.oauth2.credentials.Credentials`), against a running
`homerun up`:

  an anonymous credential and a wrong token get a 401 (which the library's session
  answers by refreshing the credential: InvalidOperation, RefreshError); create a
  service with a service account of its own and wait on its operation; through the
  ingress it is private (403); an ID token of its
  service account from IAM Credentials' generateIdToken verifies with PyJWT against the
  JWKS that the OpenID discovery document names, and with google-auth's own
  `id_token.verify_token`; the service account, not yet an invoker, gets 403 with it;
  the service account's access token gets 403 (Forbidden) from the Admin API;
  `test_iam_permissions`: the admin holds all the permissions asked for; `get_iam_policy`
  and `set_iam_policy` (its etag) make the service account an invoker, and its ID token
  is then let through; a stale etag is refused (409); `allUsers` as invoker makes the
  service public; call it through the ingress; update its template (a new revision) and
  see the new env var; list its two revisions; split the traffic 50/50 between them by
  name (update_mask traffic) and see both answer; delete it and see get raise NotFound.

Nothing here works around the client: what the library sends and expects is what a
Cloud Run user's code sends and expects. On a failure the reason is printed, with the
last Admin API exchanges, and the exit status is 1.

Environment (set by crates/homerun/tests/python_client.rs):
  HOMERUN_API      the Admin API address, host:port (required)
  HOMERUN_INGRESS  the ingress address, host:port (required)
  HOMERUN_TOKEN    the admin token (required)
  HOMERUN_IMAGE    the probe's image reference (required)
  HOMERUN_PROJECT  the project (default: local)
  HOMERUN_REGION   the location (default: local)
  HOMERUN_SERVICE  the service id (default: pyclient)
"""

import collections
import http.client
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

try:
    import google.auth.exceptions
    import google.auth.transport.requests
    import jwt
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2
    from google.iam.v1 import iam_policy_pb2, policy_pb2
    from google.oauth2 import id_token
    from google.oauth2.credentials import Credentials
    from google.protobuf import field_mask_pb2
except ImportError as e:
    print(
        f"[python client] FAILED: {e} (python3 -m pip install google-cloud-run pyjwt[crypto])",
        flush=True,
    )
    sys.exit(2)

# How long an operation may take (a liveness bound, as the Rust harness's PATIENCE).
PATIENCE = 120.0
# Requests sent to see both halves of a 50/50 split.
SPLIT_REQUESTS = 40
# The role that lets a member call a service.
INVOKER = "roles/run.invoker"
# What test_iam_permissions asks for on the service.
PERMISSIONS = [
    "run.services.get",
    "run.services.update",
    "run.services.delete",
    "run.services.getIamPolicy",
    "run.services.setIamPolicy",
    "run.routes.invoke",
]


class Failure(Exception):
    """A check that did not hold."""


def say(message):
    print(f"[python client] {message}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


def short(name):
    """The last segment of a resource name."""
    return name.rsplit("/", 1)[-1]


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise Failure(f"the environment variable {name} is not set")
    return value


class Exchanges:
    """The last Admin API requests and responses, to print when something fails."""

    def __init__(self, keep=10):
        self.last = collections.deque(maxlen=keep)

    def hook(self, response, *args, **kwargs):
        request = response.request
        body = request.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        self.last.append(
            f"> {request.method} {request.url}\n"
            f"> {clip(body or '')}\n"
            f"< {response.status_code} {clip(response.text)}"
        )

    def attach(self, client):
        # The REST transport's requests session (a private attribute: only for the
        # diagnostics, never for the calls themselves).
        # The operations client (polling) has a session of its own.
        transport = getattr(client, "_transport", None)
        operations = getattr(transport, "operations_client", None)
        for t in (transport, getattr(operations, "_transport", None)):
            session = getattr(t, "_session", None)
            if session is not None:
                session.hooks.setdefault("response", []).append(self.hook)

    def dump(self):
        if not self.last:
            return
        print("[python client] last Admin API exchanges:", flush=True)
        for exchange in self.last:
            print(exchange, flush=True)


class Responses:
    """The responses a client's session received (through the same private attribute as
    Exchanges)."""

    def __init__(self, client):
        self.last = []
        session = getattr(getattr(client, "_transport", None), "_session", None)
        check(session is not None, "the REST transport has no requests session")
        session.hooks.setdefault("response", []).append(
            lambda response, *args, **kwargs: self.last.append(response)
        )


def clip(text, limit=1500):
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def ingress_request(ingress, uri, path="/", token=None):
    """GET `path` of the service at `uri` through the ingress (Host: the URI's host), with
    `Authorization: Bearer token` if there is one: status, headers and body."""
    host = urllib.parse.urlsplit(uri).netloc
    check(host, f"the service URI {uri!r} has no host")
    address, _, port = ingress.rpartition(":")
    headers = {"Host": host}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection(address, int(port), timeout=PATIENCE)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return response.status, response.headers, body


def ingress_refuses(ingress, uri, status, what, token=None):
    """Checks that the ingress answers `status` for `uri`; its body."""
    got, _, body = ingress_request(ingress, uri, token=token)
    check(got == status, f"{what}: the ingress answered {got}, not {status}: {body[:500]!r}")
    return body


def ingress_admits(ingress, uri, what, token=None):
    """Waits (an IAM change reaches the router soon, not at once) until the ingress answers
    200 for `uri`; the probe's report. Only 403 may come before."""
    deadline = time.monotonic() + PATIENCE
    while True:
        status, _, body = ingress_request(ingress, uri, token=token)
        if status == 200:
            return probe_report(body, f"{what}: GET /")
        check(status == 403, f"{what}: the ingress answered {status}: {body[:500]!r}")
        check(time.monotonic() < deadline, f"{what}: still 403 after {PATIENCE:.0f}s")
        time.sleep(0.1)


def ingress_get(ingress, uri, path="/"):
    """GET `path` of the service at `uri` through the ingress (Host: the URI's host)."""
    host = urllib.parse.urlsplit(uri).netloc
    status, _, body = ingress_request(ingress, uri, path)
    check(
        status == 200,
        f"GET {path} with Host: {host} answered {status}: {body[:500]!r}",
    )
    return probe_report(body, f"GET {path} with Host: {host}")


def probe_report(body, what):
    """The probe's JSON report in `body`."""
    try:
        report = json.loads(body)
    except ValueError as e:
        raise Failure(f"{what}: not JSON ({e}): {body[:500]!r}")
    check(
        isinstance(report, dict) and isinstance(report.get("env"), dict),
        f"{what}: not the probe's report (no \"env\" object): {body[:500]!r}",
    )
    return report


# Plain HTTP to homerun's own addresses: never through a proxy.
URLLIB = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(url, body=None, token=None):
    """GET (or POST `body` to) `url`; the JSON answer, or a Failure with the status."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with URLLIB.open(request, timeout=PATIENCE) as response:
            text = response.read()
    except urllib.error.HTTPError as e:
        raise Failure(f"{request.get_method()} {url} answered {e.code}: {e.read()[:500]!r}")
    try:
        return json.loads(text)
    except ValueError as e:
        raise Failure(f"{request.get_method()} {url}: not JSON ({e}): {text[:500]!r}")


def refused(call, kind, what):
    """The error `call()` raises, which must be a `kind`; a Failure if it is not."""
    try:
        got = call()
    except kind as e:
        say(f"{what}: {type(e).__name__} (HTTP {e.code}): {e.message}")
        return e
    except exceptions.GoogleAPICallError as e:
        raise Failure(
            f"{what}: {type(e).__name__} (HTTP {e.code}), not {kind.__name__}: {e.message}"
        )
    raise Failure(f"{what}: the call succeeded ({type(got).__name__}), not {kind.__name__}")


def rpc_status(error):
    """The google.rpc.Status `status` of an error's JSON body (as the REST transport maps
    an error by its HTTP status alone)."""
    try:
        return error.response.json()["error"]["status"]
    except Exception:  # no body, not JSON, not an error object: no status to tell
        return None


def check_id_token(api, token, audience, email):
    """Verifies `token` as any relying party would: PyJWT with the keys of the JWKS the
    OpenID discovery document names, then google-auth's own verify_token; its claims."""
    issuer = f"http://{api}"
    discovery = http_json(f"{issuer}/.well-known/openid-configuration")
    check(discovery.get("issuer") == issuer, f"discovery: issuer {discovery.get('issuer')!r}")
    jwks_uri = discovery.get("jwks_uri")
    check(jwks_uri, f"discovery: no jwks_uri: {discovery}")
    check(
        "RS256" in discovery.get("id_token_signing_alg_values_supported", []),
        f"discovery: RS256 is not among the signing algorithms: {discovery}",
    )
    header = jwt.get_unverified_header(token)
    check(header.get("alg") == "RS256", f"ID token header: {header}")
    check(header.get("kid"), f"ID token header without kid: {header}")

    # PyJWT.
    key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=issuer,
        options={"require": ["iss", "aud", "sub", "iat", "exp"]},
    )
    check(claims.get("email") == email, f"ID token: email {claims.get('email')!r}, not {email!r}")
    check(claims.get("email_verified") is True, f"ID token: email_verified in {claims}")
    check(claims.get("sub"), f"ID token without sub: {claims}")
    check(claims.get("azp"), f"ID token without azp: {claims}")
    lifetime = claims["exp"] - claims["iat"]
    check(lifetime == 3600, f"ID token lives {lifetime}s, not 3600s: {claims}")
    check(abs(claims["iat"] - time.time()) < 300, f"ID token: iat {claims['iat']} is not now")
    try:
        jwt.decode(token, key.key, algorithms=["RS256"], audience="https://other.example")
    except jwt.InvalidAudienceError:
        pass
    else:
        raise Failure("PyJWT took the ID token for another audience")
    head, _, signature = token.split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps(dict(claims, email="someone@else.example")).encode()
    ).decode()
    forged = f"{head}.{forged}.{signature}"
    try:
        jwt.decode(forged, key.key, algorithms=["RS256"], audience=audience)
    except jwt.InvalidSignatureError:
        pass
    else:
        raise Failure("PyJWT took an ID token with altered claims")
    say(f"ID token verified by PyJWT {jwt.__version__} with key {key.key_id} of {jwks_uri}")

    # google-auth (it verifies against a JWKS with PyJWT; the issuer it leaves to us).
    request = google.auth.transport.requests.Request()
    verified = id_token.verify_token(token, request, audience=audience, certs_url=jwks_uri)
    check(verified == claims, f"google-auth's claims {verified} are not PyJWT's {claims}")
    check(verified["iss"] == issuer, f"google-auth: iss {verified['iss']!r}")
    say("ID token verified by google.oauth2.id_token.verify_token")
    return claims


def wait(operation, what):
    """The operation's result, or a Failure saying why there is none."""
    started = time.monotonic()
    try:
        result = operation.result(timeout=PATIENCE)
    except Exception as e:  # the library raises many kinds; all are a failure here
        raise Failure(f"{what}: operation.result() raised {type(e).__name__}: {e}")
    op = operation.operation
    say(f"{what}: operation {op.name} done in {time.monotonic() - started:.1f}s")
    check(op.done, f"{what}: the operation is not done: {op}")
    try:
        metadata = operation.metadata
    except Exception as e:
        raise Failure(
            f"{what}: the operation's metadata does not unpack as a Service: "
            f"{type(e).__name__}: {e}"
        )
    if metadata is not None:
        check(
            isinstance(metadata, run_v2.Service),
            f"{what}: metadata is a {type(metadata).__name__}, not a Service",
        )
    return result


def check_ready(service, what):
    check(
        service.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED,
        f"{what}: terminal condition is {service.terminal_condition}",
    )
    check(not service.reconciling, f"{what}: the service is still reconciling")
    check(service.uri, f"{what}: the service has no uri")
    check(
        service.latest_ready_revision
        and service.latest_ready_revision == service.latest_created_revision,
        f"{what}: latest ready revision {service.latest_ready_revision!r}, latest "
        f"created {service.latest_created_revision!r}",
    )


def main(exchanges):
    api = env("HOMERUN_API")
    ingress = env("HOMERUN_INGRESS")
    token = env("HOMERUN_TOKEN")
    image = env("HOMERUN_IMAGE")
    project = env("HOMERUN_PROJECT", "local")
    region = env("HOMERUN_REGION", "local")
    service_id = env("HOMERUN_SERVICE", "pyclient")
    parent = f"projects/{project}/locations/{region}"
    name = f"{parent}/services/{service_id}"

    def options(credentials):
        return {
            "transport": "rest",
            "credentials": credentials,
            "client_options": {"api_endpoint": f"http://{api}"},
        }

    services = run_v2.ServicesClient(**options(Credentials(token=token)))
    revisions = run_v2.RevisionsClient(**options(Credentials(token=token)))
    exchanges.attach(services)
    exchanges.attach(revisions)
    say(f"google-cloud-run {run_v2.__version__}, Admin API http://{api}, ingress {ingress}")

    # Authentication: none, or a wrong token, is a 401. The library never raises an API
    # error for it: its session (google.auth.transport.requests.AuthorizedSession) takes a
    # 401 as an expired token and refreshes the credential, which anonymous credentials
    # refuse with InvalidOperation and a bare token (no refresh token) with RefreshError,
    # as against Cloud Run. The 401 itself is read from the session's responses.
    for credentials, what, raised, message in [
        (
            AnonymousCredentials(),
            "anonymous",
            google.auth.exceptions.InvalidOperation,
            "missing required authentication credential",
        ),
        (
            Credentials(token="not-" + token),
            "a wrong token",
            google.auth.exceptions.RefreshError,
            "invalid authentication credentials",
        ),
    ]:
        client = run_v2.ServicesClient(**options(credentials))
        exchanges.attach(client)
        seen = Responses(client)
        try:
            got = client.get_service(name=name)
        except raised as e:
            say(f"get_service, {what}: {type(e).__name__}: {e}")
        except exceptions.GoogleAPICallError as e:
            raise Failure(f"get_service, {what}: {type(e).__name__} (HTTP {e.code}): {e.message}")
        else:
            raise Failure(f"get_service, {what}: returned {got.name!r}")
        check(seen.last, f"get_service, {what}: no response reached the session")
        response = seen.last[-1]
        check(response.status_code == 401, f"get_service, {what}: HTTP {response.status_code}")
        error = response.json().get("error", {})
        check(error.get("status") == "UNAUTHENTICATED", f"get_service, {what}: {error}")
        check(
            message in error.get("message", ""),
            f"get_service, {what}: {error.get('message')!r} does not say {message!r}",
        )
        challenge = response.headers.get("WWW-Authenticate", "")
        check(
            challenge.startswith("Bearer"),
            f"get_service, {what}: WWW-Authenticate is {challenge!r}",
        )
        say(f"get_service, {what}: 401 UNAUTHENTICATED, WWW-Authenticate: {challenge}")

    # Create, with a service account of its own (the identity its ID tokens name).
    account = f"{service_id}@{project}.iam.gserviceaccount.com"
    say(f"create_service {name} with image {image}, service account {account}")
    operation = services.create_service(
        parent=parent,
        service_id=service_id,
        service=run_v2.Service(
            template=run_v2.RevisionTemplate(
                containers=[run_v2.Container(image=image)], service_account=account
            )
        ),
    )
    service = wait(operation, "create_service")
    check(service.name == name, f"the created service is named {service.name!r}")
    check_ready(service, "create_service")
    rev1 = short(service.latest_ready_revision)
    say(f"service {service.name} is ready: uri {service.uri}, revision {rev1}")
    got = service.template.service_account
    check(got == account, f"create_service: the template's service account is {got!r}")

    # Private: no credential is a 403.
    body = ingress_refuses(ingress, service.uri, 403, "the private service, no credential")
    check(b"Forbidden" in body, f"the private service's 403 body: {body[:500]!r}")
    say("the private service answers 403 to a caller without a credential")

    # An ID token of the service's account, as any JWT library verifies it.
    credentials_api = f"http://{api}/v1/projects/-/serviceAccounts/{account}"
    answer = http_json(
        f"{credentials_api}:generateIdToken",
        {"audience": service.uri, "includeEmail": True},
        token,
    )
    account_id_token = answer.get("token")
    check(account_id_token, f"generateIdToken answered {answer}")
    say(f"generateIdToken for {account}, audience {service.uri}")
    check_id_token(api, account_id_token, service.uri, account)
    ingress_refuses(
        ingress, service.uri, 403, f"the private service, {account} not an invoker",
        token=account_id_token,
    )
    say(f"the private service answers 403 to {account}, not an invoker")

    # The account's access token: authenticated, but with no role on the project.
    answer = http_json(
        f"{credentials_api}:generateAccessToken",
        {"scope": ["https://www.googleapis.com/auth/cloud-platform"]},
        token,
    )
    check(answer.get("accessToken"), f"generateAccessToken answered {answer}")
    member = run_v2.ServicesClient(**options(Credentials(token=answer["accessToken"])))
    exchanges.attach(member)
    e = refused(
        lambda: member.get_service(name=name), exceptions.Forbidden, f"get_service as {account}"
    )
    check(rpc_status(e) == "PERMISSION_DENIED", f"get_service as {account}: {rpc_status(e)!r}")

    # IAM: what the admin may do; the account as an invoker; then allUsers.
    held = services.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(resource=name, permissions=PERMISSIONS)
    )
    check(
        sorted(held.permissions) == sorted(PERMISSIONS),
        f"test_iam_permissions as the admin: {list(held.permissions)}, not {PERMISSIONS}",
    )
    say(f"test_iam_permissions as the admin: all {len(PERMISSIONS)} held")
    policy = services.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
    check(policy.etag, f"get_iam_policy returned no etag: {policy}")
    check(not policy.bindings, f"a new service's policy has bindings: {policy}")
    first_etag = policy.etag
    policy.bindings.append(policy_pb2.Binding(role=INVOKER, members=[f"serviceAccount:{account}"]))
    policy = services.set_iam_policy(
        request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy)
    )
    check(policy.etag and policy.etag != first_etag, f"set_iam_policy: etag {policy.etag!r}")
    say(f"set_iam_policy: {account} is an invoker")
    got = services.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
    check(got == policy, f"get_iam_policy returned {got}, set_iam_policy {policy}")
    report = ingress_admits(
        ingress, service.uri, f"{account} as an invoker", token=account_id_token
    )
    check(report["env"].get("K_SERVICE") == service_id, f"as an invoker: {report['env']}")
    say(f"the private service answers 200 to {account}'s ID token")
    ingress_refuses(ingress, service.uri, 403, "the private service, still no credential")
    held = member.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(resource=name, permissions=PERMISSIONS)
    )
    check(
        list(held.permissions) == ["run.routes.invoke"],
        f"test_iam_permissions as {account}: {list(held.permissions)}",
    )
    say(f"test_iam_permissions as {account}: {list(held.permissions)}")
    stale = policy_pb2.Policy(bindings=[policy_pb2.Binding(role=INVOKER, members=["allUsers"])])
    stale.etag = first_etag
    e = refused(
        lambda: services.set_iam_policy(
            request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=stale)
        ),
        exceptions.Conflict,
        "set_iam_policy with a stale etag",
    )
    check(rpc_status(e) == "ABORTED", f"set_iam_policy with a stale etag: {rpc_status(e)!r}")
    policy = services.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
    for binding in policy.bindings:
        if binding.role == INVOKER:
            binding.members.append("allUsers")
    policy = services.set_iam_policy(
        request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy)
    )
    members = sorted(m for b in policy.bindings if b.role == INVOKER for m in b.members)
    check(
        members == sorted(["allUsers", f"serviceAccount:{account}"]),
        f"set_iam_policy: the invokers are {members}",
    )
    ingress_admits(ingress, service.uri, "allUsers as an invoker")
    say("set_iam_policy: allUsers is an invoker; the service is public")

    # Serve.
    report = ingress_get(ingress, service.uri)
    got = report["env"].get("K_SERVICE")
    check(got == service_id, f"K_SERVICE is {got!r}, not {service_id!r}")
    got = report["env"].get("K_REVISION")
    check(got == rev1, f"K_REVISION is {got!r}, not {rev1!r}")
    say(f"GET {service.uri}/ through the ingress: the probe answers as {service_id}/{rev1}")

    # Get, and update the template: a new revision.
    service = services.get_service(name=name)
    check(service.name == name, f"get_service returned {service.name!r}")
    check(service.etag, "get_service returned no etag")
    say(f"get_service {name}: generation {service.generation}, etag {service.etag}")
    service.template.containers[0].env.append(
        run_v2.EnvVar(name="PYCLIENT", value="updated")
    )
    say("update_service: template env PYCLIENT=updated")
    service = wait(services.update_service(service=service), "update_service")
    check_ready(service, "update_service")
    rev2 = short(service.latest_ready_revision)
    check(rev2 != rev1, f"the update made no new revision (still {rev1})")
    say(f"update_service: new revision {rev2}")
    report = ingress_get(ingress, service.uri)
    got = report["env"].get("PYCLIENT")
    check(got == "updated", f"after the update PYCLIENT is {got!r}, not 'updated'")
    got = report["env"].get("K_REVISION")
    check(got == rev2, f"after the update K_REVISION is {got!r}, not {rev2!r}")
    say(f"GET through the ingress: PYCLIENT=updated from {rev2}")

    # List the revisions.
    listed = list(revisions.list_revisions(parent=name))
    names = sorted(short(r.name) for r in listed)
    check(names == sorted([rev1, rev2]), f"list_revisions: {names}, not {[rev1, rev2]}")
    for r in listed:
        check(r.service == name, f"revision {r.name} names service {r.service!r}")
    say(f"list_revisions: {names}")
    got = revisions.get_revision(name=f"{name}/revisions/{rev1}")
    check(short(got.name) == rev1, f"get_revision {rev1} returned {got.name!r}")

    # Split the traffic 50/50 by revision name.
    revision_type = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    split = run_v2.Service(
        name=name,
        traffic=[
            run_v2.TrafficTarget(type_=revision_type, revision=rev1, percent=50),
            run_v2.TrafficTarget(type_=revision_type, revision=rev2, percent=50),
        ],
    )
    say(f"update_service with update_mask traffic: {rev1} 50%, {rev2} 50%")
    operation = services.update_service(
        service=split, update_mask=field_mask_pb2.FieldMask(paths=["traffic"])
    )
    service = wait(operation, "update_service (traffic)")
    check_ready(service, "update_service (traffic)")
    statuses = sorted((t.revision, t.percent) for t in service.traffic_statuses)
    check(
        statuses == sorted([(rev1, 50), (rev2, 50)]),
        f"traffic statuses {statuses}, not 50/50 between {rev1} and {rev2}",
    )
    check(
        len(service.template.containers[0].env) == 1,
        f"update_mask traffic changed the template: {service.template}",
    )
    seen = collections.Counter()
    for _ in range(SPLIT_REQUESTS):
        seen[ingress_get(ingress, service.uri)["env"].get("K_REVISION")] += 1
    check(
        set(seen) == {rev1, rev2},
        f"{SPLIT_REQUESTS} requests reached {dict(seen)}, not both {rev1} and {rev2}",
    )
    say(f"{SPLIT_REQUESTS} requests through the ingress: {dict(seen)}")

    # Delete.
    say(f"delete_service {name}")
    deleted = wait(services.delete_service(name=name), "delete_service")
    check(deleted.name == name, f"delete_service returned {deleted.name!r}")
    try:
        got = services.get_service(name=name)
    except exceptions.NotFound as e:
        say(f"get_service after the delete: NotFound ({e.message})")
    else:
        raise Failure(f"get_service after the delete returned {got.name!r}, not NotFound")
    say("PASSED")


if __name__ == "__main__":
    exchanges = Exchanges()
    try:
        main(exchanges)
    except Failure as e:
        print(f"[python client] FAILED: {e}", flush=True)
        exchanges.dump()
        sys.exit(1)
    except exceptions.GoogleAPICallError as e:
        print(
            f"[python client] FAILED: the Admin API answered {type(e).__name__} "
            f"(HTTP {e.code}): {e.message}",
            flush=True,
        )
        traceback.print_exc(file=sys.stdout)
        exchanges.dump()
        sys.exit(1)
    except Exception as e:
        print(f"[python client] FAILED: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(file=sys.stdout)
        exchanges.dump()
        sys.exit(1)
