//! Following a long-running operation to its end, with progress lines on stderr.

use std::time::Duration;

use serde_json::Value;

use api::condition::types;
use api::{ConditionState, Operation, Revision};

use super::client::{ApiClient, ApiError};

/// How long one `:wait` lasts before the revision's progress is looked at again.
const WAIT_STEP: Duration = Duration::from_secs(2);

/// Progress lines, on stderr so that stdout carries only the result.
pub fn step(text: &str) {
    eprintln!("  {text}");
}

/// Waits for `operation` (as the mutation returned it) to be done. When `revision` names
/// the revision the mutation made, its readiness is reported on the way. An operation
/// that ends in error is that error.
pub async fn follow(
    client: &ApiClient,
    operation: Value,
    service: &str,
    revision: Option<&str>,
) -> anyhow::Result<Operation> {
    let mut op: Operation = parse(operation)?;
    if let Some(revision) = revision {
        step(&format!(
            "Waiting for revision [{revision}] to become ready..."
        ));
    }
    let mut routing_announced = false;
    let mut failure_reported = false;
    while !op.done {
        op = wait_step(client, &op, WAIT_STEP).await?;
        let (Some(revision), false) = (revision, op.done || routing_announced) else {
            continue;
        };
        let Some(value) = client.get_revision(service, revision).await? else {
            continue;
        };
        let Ok(r) = api::json::from_value::<Revision>(value) else {
            continue;
        };
        let ready = r.conditions.iter().find(|c| c.kind == types::READY);
        match ready.map(|c| c.state) {
            Some(ConditionState::Succeeded) => {
                step("Routing traffic...");
                routing_announced = true;
            }
            Some(ConditionState::Failed) if !failure_reported => {
                let message = ready.map(|c| c.message.as_str()).unwrap_or_default();
                step(&format!("Revision [{revision}] failed: {message}"));
                failure_reported = true;
            }
            _ => {}
        }
    }
    let op = outcome(op)?;
    if revision.is_some() && !routing_announced {
        step("Routing traffic...");
    }
    Ok(op)
}

/// Waits for `operation` (as the mutation returned it) to be done, with no progress
/// lines; an operation that ends in error is that error.
pub async fn wait(client: &ApiClient, operation: Value) -> anyhow::Result<Operation> {
    let mut op = parse(operation)?;
    while !op.done {
        op = wait_step(client, &op, WAIT_STEP).await?;
    }
    outcome(op)
}

/// One `:wait` of at most `step` on an operation: the operation then, done or not.
pub async fn wait_step(
    client: &ApiClient,
    op: &Operation,
    step: Duration,
) -> anyhow::Result<Operation> {
    parse(client.wait_operation(&op.name, step).await?)
}

/// A done operation, or its error.
pub fn outcome(op: Operation) -> anyhow::Result<Operation> {
    match &op.error {
        Some(error) => Err(ApiError::from_status(error).into()),
        None => Ok(op),
    }
}

/// An operation as the API answered it.
pub fn parse(value: Value) -> anyhow::Result<Operation> {
    api::json::from_value(value)
        .map_err(|e| anyhow::anyhow!("the API answered with an unreadable operation: {e}"))
}
