#!/usr/bin/env python3
"""homerun's Admin API driven by Google's official Python client.

`google.cloud.run_v2` (pip package `google-cloud-run`) over REST, with anonymous
credentials, against a running `homerun up`:

  create a service and wait on its operation; call it through the ingress; update its
  template (a new revision) and see the new env var; list its two revisions; split the
  traffic 50/50 between them by name (update_mask traffic) and see both answer; delete it
  and see get raise NotFound.

Nothing here works around the client: what the library sends and expects is what a
Cloud Run user's code sends and expects. On a failure the reason is printed, with the
last Admin API exchanges, and the exit status is 1.

Environment (set by crates/homerun/tests/python_client.rs):
  HOMERUN_API      the Admin API address, host:port (required)
  HOMERUN_INGRESS  the ingress address, host:port (required)
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
import urllib.parse

try:
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2
    from google.protobuf import field_mask_pb2
except ImportError as e:
    print(f"[python client] FAILED: {e} (python3 -m pip install google-cloud-run)", flush=True)
    sys.exit(2)

# How long an operation may take (a liveness bound, as the Rust harness's PATIENCE).
PATIENCE = 120.0
# Requests sent to see both halves of a 50/50 split.
SPLIT_REQUESTS = 40


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


def clip(text, limit=1500):
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def ingress_get(ingress, uri, path="/"):
    """GET `path` of the service at `uri` through the ingress (Host: the URI's host)."""
    host = urllib.parse.urlsplit(uri).netloc
    check(host, f"the service URI {uri!r} has no host")
    address, _, port = ingress.rpartition(":")
    conn = http.client.HTTPConnection(address, int(port), timeout=PATIENCE)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    check(
        response.status == 200,
        f"GET {path} with Host: {host} answered {response.status}: {body[:500]!r}",
    )
    try:
        report = json.loads(body)
    except ValueError as e:
        raise Failure(f"GET {path} with Host: {host}: not JSON ({e}): {body[:500]!r}")
    check(
        isinstance(report, dict) and isinstance(report.get("env"), dict),
        f"GET {path} with Host: {host}: not the probe's report (no \"env\" object): "
        f"{body[:500]!r}",
    )
    return report


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
    image = env("HOMERUN_IMAGE")
    project = env("HOMERUN_PROJECT", "local")
    region = env("HOMERUN_REGION", "local")
    service_id = env("HOMERUN_SERVICE", "pyclient")
    parent = f"projects/{project}/locations/{region}"
    name = f"{parent}/services/{service_id}"

    options = {
        "transport": "rest",
        "credentials": AnonymousCredentials(),
        "client_options": {"api_endpoint": f"http://{api}"},
    }
    services = run_v2.ServicesClient(**options)
    revisions = run_v2.RevisionsClient(**options)
    exchanges.attach(services)
    exchanges.attach(revisions)
    say(f"google-cloud-run {run_v2.__version__}, Admin API http://{api}, ingress {ingress}")

    # Create.
    say(f"create_service {name} with image {image}")
    operation = services.create_service(
        parent=parent,
        service_id=service_id,
        service=run_v2.Service(
            template=run_v2.RevisionTemplate(containers=[run_v2.Container(image=image)])
        ),
    )
    service = wait(operation, "create_service")
    check(service.name == name, f"the created service is named {service.name!r}")
    check_ready(service, "create_service")
    rev1 = short(service.latest_ready_revision)
    say(f"service {service.name} is ready: uri {service.uri}, revision {rev1}")

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
