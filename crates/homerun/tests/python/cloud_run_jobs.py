#!/usr/bin/env python3
"""homerun's Jobs API driven by Google's official Python client.

`google.cloud.run_v2` (pip package `google-cloud-run`) JobsClient, ExecutionsClient and
TasksClient over REST, with the admin token as a token credential
(`google.oauth2.credentials.Credentials`), against a running `homerun up`, the probe's
image in job mode:

  create a job of 3 tasks, parallelism 2, maxRetries 2, task 1 failing its first
  attempt (PROBE_FAIL_INDEXES=1), and wait on its operation; its IAM policy
  (get_iam_policy: no bindings, an etag) and test_iam_permissions (the admin holds all
  the permissions asked for); run it and wait on the
  operation's result, the Execution: 3 succeeded, 1 retried; list its executions (1)
  and tasks (3, task 1 retried once); run it again with overrides (task_count 1, an env
  var for the container) and see the execution's task count and the variable in the
  task's environment; get the job: execution_count 2, latest_created_execution the
  second; a run whose only task fails every attempt (overrides PROBE_FAIL_INDEXES=0,
  PROBE_FAIL_ATTEMPTS=9, task_count 1) makes operation.result() raise and the
  execution show failed_count 1; update the job to parallelism 1, run 2 tasks that
  sleep 30 s, wait until one runs, cancel_execution(...).result(): 2 cancelled, and
  that run's own operation done; delete the job and see get_job raise NotFound.

Nothing here works around the client: what the library sends and expects is what a
Cloud Run user's code sends and expects. On a failure the reason is printed, with the
last Admin API exchanges, and the exit status is 1.

Environment (set by crates/homerun/tests/python_client.rs):
  HOMERUN_API      the Admin API address, host:port (required)
  HOMERUN_TOKEN    the admin token (required)
  HOMERUN_IMAGE    the probe's image reference (required)
  HOMERUN_PROJECT  the project (default: local)
  HOMERUN_REGION   the location (default: local)
  HOMERUN_JOB      the job id (default: pyjob)
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
    from google.cloud import run_v2
    from google.iam.v1 import iam_policy_pb2
    from google.oauth2.credentials import Credentials
except ImportError as e:
    print(f"[python client] FAILED: {e} (python3 -m pip install google-cloud-run)", flush=True)
    sys.exit(2)

# How long an operation may take (a liveness bound, as the Rust harness's PATIENCE).
PATIENCE = 120.0

Overrides = run_v2.RunJobRequest.Overrides
ContainerOverride = run_v2.RunJobRequest.Overrides.ContainerOverride
SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED
# What test_iam_permissions asks for on the job.
PERMISSIONS = [
    "run.jobs.get",
    "run.jobs.run",
    "run.jobs.runWithOverrides",
    "run.jobs.getIamPolicy",
    "run.jobs.setIamPolicy",
    "run.executions.cancel",
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

    def __init__(self, keep=12):
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


def wait(operation, what, kind):
    """The operation's result (a `kind`), or a Failure saying why there is none."""
    started = time.monotonic()
    try:
        result = operation.result(timeout=PATIENCE)
    except Exception as e:  # the library raises many kinds; all are a failure here
        raise Failure(f"{what}: operation.result() raised {type(e).__name__}: {e}")
    op = operation.operation
    say(f"{what}: operation {short(op.name)} done in {time.monotonic() - started:.1f}s")
    check(op.done, f"{what}: the operation is not done: {op}")
    check(
        isinstance(result, kind),
        f"{what}: the result is a {type(result).__name__}, not a {kind.__name__}",
    )
    check_metadata(operation, what, kind)
    return result


def check_metadata(operation, what, kind):
    try:
        metadata = operation.metadata
    except Exception as e:
        raise Failure(
            f"{what}: the operation's metadata does not unpack as a {kind.__name__}: "
            f"{type(e).__name__}: {e}"
        )
    check(
        isinstance(metadata, kind),
        f"{what}: metadata is a {type(metadata).__name__}, not a {kind.__name__}",
    )
    return metadata


def fails(operation, what):
    """The error an operation ends with; a Failure if it succeeds."""
    started = time.monotonic()
    try:
        result = operation.result(timeout=PATIENCE)
    except exceptions.GoogleAPICallError as e:
        say(
            f"{what}: operation.result() raised {type(e).__name__} after "
            f"{time.monotonic() - started:.1f}s: {e.message}"
        )
        check(operation.done(), f"{what}: raised but the operation is not done")
        return e
    except Exception as e:
        raise Failure(
            f"{what}: operation.result() raised {type(e).__name__}, not an API error: {e}"
        )
    raise Failure(f"{what}: operation.result() returned {result.name!r}, not an error")


def env_vars(pairs):
    return [run_v2.EnvVar(name=k, value=v) for k, v in pairs]


def task_logs(api, token, execution, index, attempt):
    """One attempt's log lines, from homerun's own logs endpoint (not part of Cloud Run's
    API: Cloud Run keeps them in Cloud Logging)."""
    path = (
        f"/homerun/v1/{execution}/logs?"
        + urllib.parse.urlencode({"task": index, "attempt": attempt})
    )
    address, _, port = api.rpartition(":")
    conn = http.client.HTTPConnection(address, int(port), timeout=PATIENCE)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    check(response.status == 200, f"GET {path} answered {response.status}: {body[:500]!r}")
    return [e.get("text", "") for e in json.loads(body).get("entries", [])]


def probe_env(lines, what):
    """The environment in the probe's JSON line."""
    for line in lines:
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict) and isinstance(v.get("env"), dict):
            return v["env"]
    raise Failure(f"{what}: no environment line from the probe in {lines}")


def completed(resource):
    """The `Completed` condition of an execution or task."""
    for c in resource.conditions:
        if c.type_ == "Completed":
            return c
    raise Failure(f"{resource.name} has no Completed condition: {resource.conditions}")


def main(exchanges):
    api = env("HOMERUN_API")
    token = env("HOMERUN_TOKEN")
    image = env("HOMERUN_IMAGE")
    project = env("HOMERUN_PROJECT", "local")
    region = env("HOMERUN_REGION", "local")
    job_id = env("HOMERUN_JOB", "pyjob")
    parent = f"projects/{project}/locations/{region}"
    name = f"{parent}/jobs/{job_id}"

    options = {
        "transport": "rest",
        "credentials": Credentials(token=token),
        "client_options": {"api_endpoint": f"http://{api}"},
    }
    jobs = run_v2.JobsClient(**options)
    executions = run_v2.ExecutionsClient(**options)
    tasks = run_v2.TasksClient(**options)
    for client in (jobs, executions, tasks):
        exchanges.attach(client)
    say(f"google-cloud-run {run_v2.__version__}, Admin API http://{api}")

    # Create.
    say(f"create_job {name}: 3 tasks, parallelism 2, max_retries 2, task 1 fails once")
    operation = jobs.create_job(
        parent=parent,
        job_id=job_id,
        job=run_v2.Job(
            template=run_v2.ExecutionTemplate(
                task_count=3,
                parallelism=2,
                template=run_v2.TaskTemplate(
                    max_retries=2,
                    timeout="120s",
                    containers=[
                        run_v2.Container(
                            image=image,
                            args=["job"],
                            env=env_vars([("PROBE_FAIL_INDEXES", "1")]),
                        )
                    ],
                ),
            )
        ),
    )
    job = wait(operation, "create_job", run_v2.Job)
    check(job.name == name, f"the created job is named {job.name!r}")
    check(job.generation == 1, f"the created job's generation is {job.generation}")
    check(job.terminal_condition.state == SUCCEEDED, f"create_job: {job.terminal_condition}")
    check(job.template.task_count == 3, f"create_job: task_count {job.template.task_count}")

    # Its IAM policy, and what the admin may do with it.
    policy = jobs.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
    check(policy.etag, f"get_iam_policy returned no etag: {policy}")
    check(not policy.bindings, f"a new job's policy has bindings: {policy}")
    held = jobs.test_iam_permissions(
        request=iam_policy_pb2.TestIamPermissionsRequest(resource=name, permissions=PERMISSIONS)
    )
    check(
        sorted(held.permissions) == sorted(PERMISSIONS),
        f"test_iam_permissions as the admin: {list(held.permissions)}, not {PERMISSIONS}",
    )
    say(f"get_iam_policy: no bindings; test_iam_permissions: all {len(PERMISSIONS)} held")

    # Run: three tasks, task 1 retried once.
    say("run_job")
    operation = jobs.run_job(name=name)
    running = check_metadata(operation, "run_job (running)", run_v2.Execution)
    say(f"run_job: execution {short(running.name)} started")
    execution = wait(operation, "run_job", run_v2.Execution)
    first = execution.name
    check(first == running.name, f"run_job: result {first!r}, metadata {running.name!r}")
    check(
        short(first).startswith(f"{job_id}-"),
        f"the execution {first!r} is not named after the job",
    )
    check(execution.job == job_id, f"execution.job is {execution.job!r}")
    check(execution.task_count == 3, f"run_job: task_count {execution.task_count}")
    check(
        execution.succeeded_count == 3,
        f"run_job: succeeded_count {execution.succeeded_count}, not 3: {execution}",
    )
    check(
        execution.retried_count == 1,
        f"run_job: retried_count {execution.retried_count}, not 1: {execution}",
    )
    check(execution.failed_count == 0, f"run_job: failed_count {execution.failed_count}")
    check(completed(execution).state == SUCCEEDED, f"run_job: {completed(execution)}")
    check(execution.completion_time, "run_job: the execution has no completion_time")
    say(
        f"run_job: {short(first)} succeeded {execution.succeeded_count}, retried "
        f"{execution.retried_count}"
    )

    # List the executions and the tasks.
    listed = list(executions.list_executions(parent=name))
    check(
        [e.name for e in listed] == [first],
        f"list_executions: {[e.name for e in listed]}, not [{first!r}]",
    )
    got = executions.get_execution(name=first)
    check(got.name == first, f"get_execution returned {got.name!r}")
    check(got.etag, "get_execution returned no etag")
    listed = sorted(tasks.list_tasks(parent=first), key=lambda t: t.index)
    check(
        [t.index for t in listed] == [0, 1, 2],
        f"list_tasks: indexes {[t.index for t in listed]}, not [0, 1, 2]",
    )
    for t in listed:
        check(t.execution == short(first), f"task {t.name}: execution {t.execution!r}")
        check(t.job == job_id, f"task {t.name}: job {t.job!r}")
        want = 1 if t.index == 1 else 0
        check(t.retried == want, f"task {t.index}: retried {t.retried}, not {want}")
        check(completed(t).state == SUCCEEDED, f"task {t.index}: {completed(t)}")
    got = tasks.get_task(name=listed[1].name)
    check(got.name == listed[1].name and got.retried == 1, f"get_task: {got}")
    say(f"list_tasks: {[(short(t.name), t.retried) for t in listed]}")

    # Run with overrides: one task, a variable of its own.
    say("run_job with overrides: task_count 1, env PYJOB=override")
    operation = jobs.run_job(
        request=run_v2.RunJobRequest(
            name=name,
            overrides=Overrides(
                task_count=1,
                container_overrides=[
                    ContainerOverride(env=env_vars([("PYJOB", "override")]))
                ],
            ),
        )
    )
    execution = wait(operation, "run_job (overrides)", run_v2.Execution)
    second = execution.name
    check(second != first, "run_job (overrides) returned the first execution")
    check(
        execution.task_count == 1,
        f"run_job (overrides): task_count {execution.task_count}, not 1",
    )
    check(
        execution.succeeded_count == 1,
        f"run_job (overrides): succeeded_count {execution.succeeded_count}, not 1",
    )
    got = {e.name: e.value for e in execution.template.containers[0].env}
    check(
        got.get("PYJOB") == "override" and got.get("PROBE_FAIL_INDEXES") == "1",
        f"run_job (overrides): the execution's template env is {got}",
    )
    seen = probe_env(task_logs(api, token, second, 0, 0), "run_job (overrides)")
    check(
        seen.get("PYJOB") == "override",
        f"run_job (overrides): the task saw PYJOB={seen.get('PYJOB')!r}",
    )
    check(
        seen.get("CLOUD_RUN_TASK_COUNT") == "1",
        f"run_job (overrides): CLOUD_RUN_TASK_COUNT={seen.get('CLOUD_RUN_TASK_COUNT')!r}",
    )
    say(f"run_job (overrides): {short(second)} ran 1 task with PYJOB=override")

    # The job counts its executions.
    job = jobs.get_job(name=name)
    check(job.execution_count == 2, f"get_job: execution_count {job.execution_count}, not 2")
    latest = job.latest_created_execution
    check(
        latest.name == second,
        f"get_job: latest_created_execution {latest.name!r}, not {second!r}",
    )
    check(
        latest.completion_status
        == run_v2.ExecutionReference.CompletionStatus.EXECUTION_SUCCEEDED,
        f"get_job: latest_created_execution {latest}",
    )
    check(job.template.task_count == 3, "the overrides changed the job's task_count")
    say(f"get_job: execution_count 2, latest {short(latest.name)}")

    # A run that fails: task 0 fails all its attempts.
    say("run_job with overrides: task_count 1, PROBE_FAIL_INDEXES=0, PROBE_FAIL_ATTEMPTS=9")
    operation = jobs.run_job(
        request=run_v2.RunJobRequest(
            name=name,
            overrides=Overrides(
                task_count=1,
                container_overrides=[
                    ContainerOverride(
                        env=env_vars(
                            [("PROBE_FAIL_INDEXES", "0"), ("PROBE_FAIL_ATTEMPTS", "9")]
                        )
                    )
                ],
            ),
        )
    )
    doomed = check_metadata(operation, "run_job (failing)", run_v2.Execution).name
    fails(operation, "run_job (failing)")
    execution = executions.get_execution(name=doomed)
    check(
        execution.failed_count == 1,
        f"run_job (failing): failed_count {execution.failed_count}, not 1: {execution}",
    )
    check(
        execution.succeeded_count == 0,
        f"run_job (failing): succeeded_count {execution.succeeded_count}",
    )
    check(
        completed(execution).state == run_v2.Condition.State.CONDITION_FAILED,
        f"run_job (failing): {completed(execution)}",
    )
    (t0,) = tasks.list_tasks(parent=doomed)
    check(t0.retried == 2, f"run_job (failing): task 0 retried {t0.retried}, not 2")
    check(
        t0.last_attempt_result.exit_code == 1,
        f"run_job (failing): task 0's last attempt {t0.last_attempt_result}",
    )
    say(
        f"run_job (failing): {short(doomed)} failed_count 1, task 0 retried 2, "
        f"execution retried_count {execution.retried_count}"
    )

    # Cancel: one task at a time, the first sleeping.
    job = jobs.get_job(name=name)
    job.template.parallelism = 1
    say("update_job: parallelism 1")
    job = wait(jobs.update_job(job=job), "update_job", run_v2.Job)
    check(job.template.parallelism == 1, f"update_job: parallelism {job.template.parallelism}")
    check(job.generation == 2, f"update_job: generation {job.generation}, not 2")
    say("run_job with overrides: task_count 2, PROBE_SLEEP_MS=30000")
    operation = jobs.run_job(
        request=run_v2.RunJobRequest(
            name=name,
            overrides=Overrides(
                task_count=2,
                container_overrides=[
                    ContainerOverride(
                        env=env_vars([("PROBE_SLEEP_MS", "30000"), ("PROBE_FAIL_INDEXES", "")])
                    )
                ],
            ),
        )
    )
    long = check_metadata(operation, "run_job (to cancel)", run_v2.Execution).name
    deadline = time.monotonic() + PATIENCE
    while True:
        execution = executions.get_execution(name=long)
        if execution.running_count == 1:
            break
        check(
            execution.running_count == 0 and not execution.completion_time,
            f"run_job (to cancel): {execution}",
        )
        check(time.monotonic() < deadline, f"never running: {execution}")
        time.sleep(0.1)
    say(f"run_job (to cancel): {short(long)} runs 1 task")
    cancelled = wait(
        executions.cancel_execution(name=long), "cancel_execution", run_v2.Execution
    )
    check(cancelled.name == long, f"cancel_execution returned {cancelled.name!r}")
    execution = executions.get_execution(name=long)
    for e in (cancelled, execution):
        check(
            e.cancelled_count == 2,
            f"cancel_execution: cancelled_count {e.cancelled_count}, not 2: {e}",
        )
        check(e.running_count == 0, f"cancel_execution: running_count {e.running_count}")
    check(execution.completion_time, "the cancelled execution has no completion_time")
    for t in tasks.list_tasks(parent=long):
        check(
            completed(t).execution_reason
            == run_v2.Condition.ExecutionReason.CANCELLED,
            f"task {t.index} of the cancelled execution: {completed(t)}",
        )
    # The run's own operation ends too. Whether with an error is not checked: Cloud Run
    # ends a cancelled execution's run without one (apache/airflow#57791), homerun
    # with FAILED_PRECONDITION.
    try:
        operation.result(timeout=PATIENCE)
        ended = "with the execution"
    except exceptions.GoogleAPICallError as e:
        ended = f"with {type(e).__name__}: {e.message}"
    check(operation.done(), "run_job (cancelled): the operation is not done")
    say(f"cancel_execution: {short(long)} cancelled_count 2; its run ended {ended}")

    # Delete.
    say(f"delete_job {name}")
    deleted = wait(jobs.delete_job(name=name), "delete_job", run_v2.Job)
    check(deleted.name == name, f"delete_job returned {deleted.name!r}")
    try:
        got = jobs.get_job(name=name)
    except exceptions.NotFound as e:
        say(f"get_job after the delete: NotFound ({e.message})")
    else:
        raise Failure(f"get_job after the delete returned {got.name!r}, not NotFound")
    try:
        got = executions.get_execution(name=first)
    except exceptions.NotFound:
        say("get_execution after the delete: NotFound")
    else:
        raise Failure(f"get_execution after the delete returned {got.name!r}")
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
