//! `homerun executions list [--job J] | describe EXEC | cancel EXEC | delete EXEC |
//! logs EXEC [--task N] [--attempt K]`: gcloud's `run jobs executions`, and the task
//! attempts' logs homerun keeps (Cloud Run's are in Cloud Logging).
//!
//! An execution is named by its id alone (`hello-x7k2p`, as gcloud takes it): the job is
//! the id without its last `-` segment.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use api::condition::ExecutionReason;
use api::defaults::{effective_max_retries, effective_task_timeout};
use api::{Condition, ConditionState, Execution, Operation, TaskTemplate};

use super::client::{parse_resource, ApiClient};
use super::operation::{outcome, step, wait, wait_step};
use super::output::{ready_mark, KeyLines, OutputArgs, Table};
use super::services::finish_async;
use super::view::{execution_environment_text, render_spec, short_name, Workload};

/// How often a followed execution's progress is read.
const POLL: Duration = Duration::from_secs(1);

#[derive(Subcommand, Debug)]
pub enum ExecutionsCommand {
    /// List executions, of one job or of all, newest first.
    List {
        /// Only this job's executions.
        #[arg(long)]
        job: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show an execution: its tasks' progress and what they run.
    Describe {
        /// The execution's id (`JOB-xxxxx`).
        execution: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Stop an execution: running tasks are stopped, the others never start.
    Cancel {
        /// The execution's id.
        execution: String,
        /// Return once the cancellation is accepted, without waiting for the tasks to
        /// stop.
        #[arg(long = "async")]
        run_async: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete an execution and its tasks.
    Delete {
        /// The execution's id.
        execution: String,
        /// Accepted for gcloud's sake: homerun never prompts.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print the logs of an execution's task attempts: `TIME [task N attempt K] TEXT`.
    Logs {
        /// The execution's id.
        execution: String,
        /// Only this task's (its index).
        #[arg(long)]
        task: Option<u32>,
        /// Only this attempt's (0: the first).
        #[arg(long)]
        attempt: Option<u32>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// The job an execution id belongs to: executions are named `{job}-{5 random}`.
pub fn job_of(execution: &str) -> anyhow::Result<&str> {
    match execution.rsplit_once('-') {
        Some((job, suffix)) if !job.is_empty() && !suffix.is_empty() => Ok(job),
        _ => Err(anyhow!(
            "\"{execution}\" is not an execution id (JOB-xxxxx)"
        )),
    }
}

pub fn not_found(client: &ApiClient, execution: &str) -> anyhow::Error {
    anyhow!(
        "execution [{execution}] does not exist in project [{}] region [{}]",
        client.project,
        client.region
    )
}

/// The execution `id` (a full name is taken too), parsed, with the API's JSON.
pub async fn get(client: &ApiClient, id: &str) -> anyhow::Result<(Execution, Value)> {
    let id = short_name(id);
    let value = client
        .get_execution(job_of(id)?, id)
        .await?
        .ok_or_else(|| not_found(client, id))?;
    Ok((parse_resource(value.clone(), "execution")?, value))
}

/// How a run (an execution or a task) stands by its `Completed` condition: `pending`,
/// `running`, `cancelling`, `succeeded`, `failed` or `cancelled`.
pub fn run_state(completed: Option<&Condition>, started: bool) -> &'static str {
    match completed.map(|c| (c.state, c.execution_reason)) {
        Some((ConditionState::Succeeded, _)) => "succeeded",
        Some((ConditionState::Failed, Some(ExecutionReason::Cancelled))) => "cancelled",
        Some((ConditionState::Failed, _)) => "failed",
        Some((_, Some(ExecutionReason::Cancelling))) => "cancelling",
        Some((ConditionState::Reconciling, _)) => "running",
        _ if started => "running",
        _ => "pending",
    }
}

pub fn execution_state(e: &Execution) -> &'static str {
    run_state(
        e.completed_condition(),
        e.start_time.is_some() || e.running_count > 0,
    )
}

/// `Execution [ID] STATE: S succeeded, F failed, R running of N tasks` (and the
/// cancelled and retried ones when there are).
pub fn progress_text(e: &Execution) -> String {
    let mut text = format!(
        "Execution [{}] {}: {} succeeded, {} failed, {} running",
        e.id(),
        execution_state(e),
        e.succeeded_count,
        e.failed_count,
        e.running_count
    );
    if e.cancelled_count > 0 {
        text.push_str(&format!(", {} cancelled", e.cancelled_count));
    }
    let tasks = e.task_count.max(1);
    text.push_str(&format!(
        " of {tasks} task{}",
        if tasks == 1 { "" } else { "s" }
    ));
    if e.retried_count > 0 {
        text.push_str(&format!(" ({} retried)", e.retried_count));
    }
    text
}

/// The progress of a followed execution on stderr: one line redrawn in place on a
/// terminal, else a plain line each time it changes.
struct ProgressLine {
    bar: Option<ProgressBar>,
    last: String,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        ProgressLine {
            bar,
            last: String::new(),
        }
    }

    fn show(&mut self, e: &Execution) {
        let text = progress_text(e);
        if text == self.last {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(text.clone()),
            None => step(&text),
        }
        self.last = text;
    }

    /// The last line stays, as a plain one.
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if !self.last.is_empty() {
                step(&self.last);
            }
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Follows the execution a `:run` operation made (`op`, as the API answered it) to its
/// end, its progress on stderr: the execution as it ended (the API's JSON), or, when it
/// did not succeed, the operation's error (its message the execution's).
pub async fn follow(
    client: &ApiClient,
    op: Operation,
    execution: &Execution,
) -> anyhow::Result<Value> {
    let id = execution.id().to_string();
    let job = job_of(&id)?.to_string();
    let mut line = ProgressLine::new();
    line.show(execution);
    let mut op = op;
    let last = loop {
        if !op.done {
            op = wait_step(client, &op, POLL).await?;
        }
        let Some(value) = client.get_execution(&job, &id).await? else {
            // Deleted (or its job): nothing will finish the operation.
            line.finish();
            bail!("execution [{id}] was deleted");
        };
        if let Ok(e) = parse_resource::<Execution>(value.clone(), "execution") {
            line.show(&e);
        }
        if op.done {
            break value;
        }
    };
    line.finish();
    if let Err(e) = outcome(op) {
        step(&format!("Its logs: homerun executions logs {id}"));
        return Err(e);
    }
    Ok(last)
}

pub async fn run(client: &ApiClient, cmd: ExecutionsCommand) -> anyhow::Result<()> {
    match cmd {
        ExecutionsCommand::List { job, output } => list(client, job.as_deref(), output).await,
        ExecutionsCommand::Describe { execution, output } => {
            let (e, value) = get(client, &execution).await?;
            if !output.print_structured(&value)? {
                print!("{}", describe_text(&e, &client.region));
            }
            Ok(())
        }
        ExecutionsCommand::Cancel {
            execution,
            run_async,
            output,
        } => cancel(client, short_name(&execution), run_async, output).await,
        ExecutionsCommand::Delete {
            execution,
            quiet: _,
            output,
        } => {
            let id = short_name(&execution);
            let operation = client.delete_execution(job_of(id)?, id).await?;
            wait(client, operation.clone()).await?;
            if !output.print_structured(&operation)? {
                eprintln!("Deleted execution [{id}].");
            }
            Ok(())
        }
        ExecutionsCommand::Logs {
            execution,
            task,
            attempt,
            output,
        } => logs(client, short_name(&execution), task, attempt, output).await,
    }
}

async fn list(client: &ApiClient, job: Option<&str>, output: OutputArgs) -> anyhow::Result<()> {
    let Some(values) = output.items_for_table(client.list_executions(job).await?)? else {
        return Ok(());
    };
    let mut executions: Vec<Execution> = values
        .into_iter()
        .map(|v| parse_resource(v, "execution"))
        .collect::<anyhow::Result<_>>()?;
    executions.sort_by(|a, b| b.create_time.cmp(&a.create_time).then(a.name.cmp(&b.name)));
    let mut table = Table::new([
        "",
        "JOB",
        "EXECUTION",
        "REGION",
        "STATE",
        "RUNNING",
        "COMPLETE",
        "CREATED",
    ]);
    for e in executions {
        table.row(vec![
            ready_mark(e.completed_condition()).to_string(),
            short_name(e.job_name()).to_string(),
            e.id().to_string(),
            client.region.clone(),
            execution_state(&e).to_string(),
            e.running_count.to_string(),
            format!("{} / {}", e.succeeded_count, e.task_count.max(1)),
            e.create_time.map(|t| t.to_string()).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// What each task of a job or an execution runs, beyond its containers; `counts`: the
/// `taskCount` and `parallelism` of the job or execution (none for a task).
pub fn task_settings(counts: Option<(i32, i32)>, t: &TaskTemplate) -> KeyLines {
    let mut lines = KeyLines::new();
    if let Some((task_count, parallelism)) = counts {
        lines.add("Tasks", task_count.max(1).to_string());
        lines.add(
            "Parallelism",
            match parallelism {
                0 => "no limit".to_string(),
                n => n.to_string(),
            },
        );
    }
    lines.add("Max retries", effective_max_retries(t).to_string());
    lines.add("Task timeout", effective_task_timeout(t).to_string());
    if !t.service_account.is_empty() {
        lines.add("Service account", t.service_account.clone());
    }
    lines.add(
        "Execution environment",
        execution_environment_text(t.execution_environment),
    );
    lines
}

/// The text view of an execution.
pub fn describe_text(e: &Execution, region: &str) -> String {
    let completed = e.completed_condition();
    let mut out = format!(
        "{} Execution {} in region {region}\n\n",
        ready_mark(completed),
        e.id()
    );
    let mut lines = KeyLines::new();
    lines.add("Job", short_name(e.job_name()));
    lines.add("State", execution_state(e));
    for (key, time) in [
        ("Created", e.create_time),
        ("Started", e.start_time),
        ("Completed", e.completion_time),
    ] {
        if let Some(t) = time {
            lines.add(key, t.to_string());
        }
    }
    if let Some(c) = completed.filter(|c| !c.message.is_empty()) {
        lines.add("Status", c.message.clone());
    }
    let mut tasks = format!(
        "{} succeeded, {} failed, {} running",
        e.succeeded_count, e.failed_count, e.running_count
    );
    if e.cancelled_count > 0 {
        tasks.push_str(&format!(", {} cancelled", e.cancelled_count));
    }
    if e.retried_count > 0 {
        tasks.push_str(&format!(" ({} retried)", e.retried_count));
    }
    lines.add("Task progress", tasks);
    out.push_str(&lines.render_aligned("", lines.key_width()));
    out.push('\n');
    let template = e.template.clone().unwrap_or_default();
    out.push_str(&render_spec(
        &template.containers,
        &template.volumes,
        Workload::Job,
        &task_settings(Some((e.task_count, e.parallelism)), &template),
        "",
    ));
    out
}

async fn cancel(
    client: &ApiClient,
    id: &str,
    run_async: bool,
    output: OutputArgs,
) -> anyhow::Result<()> {
    let job = job_of(id)?;
    eprintln!("Cancelling execution [{id}]...");
    let operation = client.cancel_execution(job, id).await?;
    if run_async {
        return finish_async(&operation, &output);
    }
    wait(client, operation).await?;
    let value = client
        .get_execution(job, id)
        .await?
        .ok_or_else(|| not_found(client, id))?;
    let e: Execution = parse_resource(value.clone(), "execution")?;
    eprintln!("Execution [{id}] has been cancelled.");
    step(&progress_text(&e));
    output.print_structured(&value)?;
    Ok(())
}

/// One log entry as a line: `TIME [task N attempt K] TEXT`.
pub fn log_line(entry: &Value) -> String {
    let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
    let number = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_u64)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "{} [task {} attempt {}] {}",
        text("time"),
        number("task"),
        number("attempt"),
        text("text")
    )
}

async fn logs(
    client: &ApiClient,
    id: &str,
    task: Option<u32>,
    attempt: Option<u32>,
    output: OutputArgs,
) -> anyhow::Result<()> {
    let job = job_of(id)?;
    let entries = match client.execution_logs(job, id, task, attempt).await? {
        Some(entries) => entries,
        None => {
            // No logs at all: say whether the execution is there.
            if client.get_execution(job, id).await?.is_none() {
                return Err(not_found(client, id));
            }
            Vec::new()
        }
    };
    if output.print_structured(&Value::Array(entries.clone()))? {
        return Ok(());
    }
    if entries.is_empty() {
        eprintln!("No logs for execution [{id}].");
    }
    for entry in &entries {
        println!("{}", log_line(entry));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::condition::types;
    use serde_json::json;

    #[test]
    fn the_job_of_an_execution() {
        assert_eq!(job_of("my-job-x7k2p").unwrap(), "my-job");
        assert!(job_of("plain").is_err());
        assert!(job_of("-abc").is_err());
    }

    #[test]
    fn states_and_progress() {
        let mut e = Execution {
            name: "projects/p/locations/l/jobs/j/executions/j-abcde".into(),
            task_count: 3,
            ..Default::default()
        };
        assert_eq!(execution_state(&e), "pending");
        e.running_count = 2;
        e.succeeded_count = 1;
        assert_eq!(
            progress_text(&e),
            "Execution [j-abcde] running: 1 succeeded, 0 failed, 2 running of 3 tasks"
        );
        e.conditions = vec![Condition::new(types::COMPLETED, ConditionState::Failed)
            .with_execution_reason(ExecutionReason::Cancelled)];
        e.running_count = 0;
        e.cancelled_count = 2;
        e.retried_count = 1;
        assert_eq!(
            progress_text(&e),
            "Execution [j-abcde] cancelled: 1 succeeded, 0 failed, 0 running, 2 cancelled of 3 tasks (1 retried)"
        );
    }

    #[test]
    fn log_lines() {
        let entry = json!({"task": 1, "attempt": 0, "time": "2024-01-01T00:00:00Z",
            "stream": "stdout", "container": "job", "text": "hello"});
        assert_eq!(
            log_line(&entry),
            "2024-01-01T00:00:00Z [task 1 attempt 0] hello"
        );
    }
}
