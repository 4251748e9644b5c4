//! `homerun tasks list --execution EXEC | describe TASK`: gcloud's `run jobs executions
//! tasks`. Tasks are named `{execution}-{index}` (`hello-x7k2p-0`).

use anyhow::anyhow;
use clap::Subcommand;

use api::condition::types;
use api::{Condition, Task, TaskAttemptResult, TaskTemplate};

use super::client::{parse_resource, ApiClient};
use super::executions::{job_of, run_state, task_settings};
use super::output::{ready_mark, KeyLines, OutputArgs, Table};
use super::view::{render_spec, short_name, Workload};

#[derive(Subcommand, Debug)]
pub enum TasksCommand {
    /// List the tasks of an execution, by index.
    List {
        /// The execution's id (`JOB-xxxxx`).
        #[arg(long)]
        execution: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a task.
    Describe {
        /// The task's id (`JOB-xxxxx-INDEX`).
        task: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn completed(t: &Task) -> Option<&Condition> {
    t.conditions.iter().find(|c| c.kind == types::COMPLETED)
}

fn state(t: &Task) -> &'static str {
    run_state(completed(t), t.start_time.is_some())
}

/// How the last attempt ended: `exit code N` or `signal N`.
fn last_exit(r: Option<&TaskAttemptResult>) -> String {
    match r {
        None => String::new(),
        Some(r) if r.term_signal != 0 => format!("signal {}", r.term_signal),
        Some(r) => format!("exit code {}", r.exit_code),
    }
}

pub async fn run(client: &ApiClient, cmd: TasksCommand) -> anyhow::Result<()> {
    match cmd {
        TasksCommand::List { execution, output } => {
            list(client, short_name(&execution), output).await
        }
        TasksCommand::Describe { task, output } => {
            describe(client, short_name(&task), output).await
        }
    }
}

async fn list(client: &ApiClient, execution: &str, output: OutputArgs) -> anyhow::Result<()> {
    let job = job_of(execution)?;
    if client.get_execution(job, execution).await?.is_none() {
        return Err(super::executions::not_found(client, execution));
    }
    let Some(values) = output.items_for_table(client.list_tasks(job, execution).await?)? else {
        return Ok(());
    };
    let mut tasks: Vec<Task> = values
        .into_iter()
        .map(|v| parse_resource(v, "task"))
        .collect::<anyhow::Result<_>>()?;
    tasks.sort_by_key(|t| t.index);
    let mut table = Table::new(["", "INDEX", "TASK", "STATE", "RETRIES", "LAST EXIT"]);
    for t in tasks {
        table.row(vec![
            ready_mark(completed(&t)).to_string(),
            t.index.to_string(),
            t.id().to_string(),
            state(&t).to_string(),
            t.retried.to_string(),
            last_exit(t.last_attempt_result.as_ref()),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn describe(client: &ApiClient, task: &str, output: OutputArgs) -> anyhow::Result<()> {
    let bad = || anyhow!("\"{task}\" is not a task id (JOB-xxxxx-INDEX)");
    let (execution, _) = task.rsplit_once('-').ok_or_else(bad)?;
    let job = job_of(execution).map_err(|_| bad())?;
    let value = client
        .get_task(job, execution, task)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "task [{task}] does not exist in project [{}] region [{}]",
                client.project,
                client.region
            )
        })?;
    if !output.print_structured(&value)? {
        print!(
            "{}",
            describe_text(&parse_resource(value, "task")?, &client.region)
        );
    }
    Ok(())
}

/// The text view of a task.
pub fn describe_text(t: &Task, region: &str) -> String {
    let completed = completed(t);
    let mut out = format!(
        "{} Task {} in region {region}\n\n",
        ready_mark(completed),
        t.id()
    );
    let mut lines = KeyLines::new();
    lines.add("Execution", t.execution.clone());
    lines.add("Index", t.index.to_string());
    lines.add("State", state(t));
    lines.add("Retries", t.retried.to_string());
    for (key, time) in [("Started", t.start_time), ("Completed", t.completion_time)] {
        if let Some(time) = time {
            lines.add(key, time.to_string());
        }
    }
    if let Some(r) = &t.last_attempt_result {
        lines.add("Last attempt", last_exit(Some(r)));
    }
    if let Some(c) = completed.filter(|c| !c.message.is_empty()) {
        lines.add("Status", c.message.clone());
    }
    out.push_str(&lines.render_aligned("", lines.key_width()));
    out.push('\n');
    let template = TaskTemplate {
        max_retries: Some(t.max_retries),
        timeout: t.timeout,
        service_account: t.service_account.clone(),
        execution_environment: t.execution_environment,
        ..Default::default()
    };
    out.push_str(&render_spec(
        &t.containers,
        &t.volumes,
        Workload::Job,
        &task_settings(None, &template),
        "",
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::ConditionState;

    #[test]
    fn a_task_described() {
        let t = Task {
            name: "projects/p/locations/l/jobs/j/executions/j-abcde/tasks/j-abcde-1".into(),
            execution: "j-abcde".into(),
            index: 1,
            retried: 2,
            max_retries: 3,
            conditions: vec![Condition::new(types::COMPLETED, ConditionState::Failed)
                .with_message("Container 'job' exited with code 3.")],
            last_attempt_result: Some(TaskAttemptResult {
                exit_code: 3,
                ..Default::default()
            }),
            containers: vec![api::Container {
                image: "example/job".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = describe_text(&t, "local");
        assert!(
            text.starts_with("✖ Task j-abcde-1 in region local\n"),
            "{text}"
        );
        assert!(text.contains("State:         failed\n"), "{text}");
        assert!(text.contains("Last attempt:  exit code 3\n"), "{text}");
        assert!(text.contains("Max retries:"), "{text}");
        assert!(!text.contains("Parallelism"), "{text}");
    }
}
