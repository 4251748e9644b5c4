//! `homerun jobs create|update|execute|list|describe|delete`: gcloud's `run jobs`, with
//! the IAM verbs (`add-iam-policy-binding`, `remove-iam-policy-binding`,
//! `get-iam-policy`).
//!
//! `create` writes a job made of the flags; `update` reads the job, changes what the
//! flags say in its template (keeping everything else) and patches the template back
//! (`updateMask=template`). Either may start an execution at once (`--execute-now`),
//! as `execute` does: `:run`, with overrides for that execution alone, followed to its
//! end with `--wait` (a progress line on stderr; a failed execution is a failure of the
//! command, with its message).

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use api::{
    Container, ContainerOverride, EnumEncoding, EnvVar, Execution, ExecutionTemplate, Job,
    Overrides,
};

use super::args::{parse_dict, parse_duration_secs, split_list, EnvArgs};
use super::client::{parse_resource, ApiClient, IamResource};
use super::deploy::ExecutionEnvironmentArg;
use super::executions::{self, task_settings};
use super::iam::{self, IamCommand};
use super::operation::{self, step};
use super::output::{ready_mark, OutputArgs, Table};
use super::secret_flags::{apply_env_and_secrets, SecretArgs};
use super::view::{render_spec, short_name, Workload};

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Create a job (nothing runs until it is executed).
    Create(Box<JobArgs>),
    /// Change a job: what the flags say, the rest kept.
    Update(Box<JobArgs>),
    /// Run a job: start an execution of it, with overrides for that one alone.
    Execute(ExecuteArgs),
    /// List the jobs.
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a job.
    Describe {
        /// The job's id.
        job: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Run a job on a schedule (Cloud Scheduler's role): at each occurrence of a 5-field
    /// crontab schedule in a time zone. Repeat to add schedules; --clear removes them.
    Schedule {
        /// The job's id.
        job: String,
        /// The schedule, e.g. "*/15 * * * *" or "@daily".
        #[arg(long, required_unless_present = "clear")]
        cron: Option<String>,
        /// An IANA time zone (UTC by default), e.g. Europe/Paris.
        #[arg(long, default_value = "")]
        time_zone: String,
        /// Remove every schedule of the job.
        #[arg(long, conflicts_with = "cron")]
        clear: bool,
    },
    /// Delete a job, its executions and their tasks.
    Delete {
        /// The job's id.
        job: String,
        /// Accepted for gcloud's sake: homerun never prompts.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    #[command(flatten)]
    Iam(IamCommand),
}

#[derive(Args, Debug, Clone, Default)]
pub struct JobArgs {
    /// The job's id.
    pub job: String,
    /// The container image (required to create a job).
    #[arg(long)]
    pub image: Option<String>,
    /// Tasks each execution runs (1 by default).
    #[arg(long)]
    pub tasks: Option<u32>,
    /// Tasks run at once (0: as many as the platform allows).
    #[arg(long)]
    pub parallelism: Option<u32>,
    /// Retries of a failed task before it fails the execution (3 by default, 0 to 10).
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// How long each attempt of a task may run (600, 600s, 10m, 1h...; 10m by default).
    #[arg(long)]
    pub task_timeout: Option<String>,
    #[command(flatten)]
    pub env: EnvArgs,
    /// The memory limit (512Mi, 1Gi...).
    #[arg(long)]
    pub memory: Option<String>,
    /// The CPU limit (1, 2, 0.5...).
    #[arg(long)]
    pub cpu: Option<String>,
    /// The entrypoint, comma-separated ("" for the image's).
    #[arg(long, allow_hyphen_values = true)]
    pub command: Option<String>,
    /// The arguments, comma-separated ("" for the image's).
    #[arg(long, allow_hyphen_values = true)]
    pub args: Option<String>,
    /// The service account the tasks run as (their identity at the metadata server).
    #[arg(long)]
    pub service_account: Option<String>,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// The sandbox generation.
    #[arg(long, value_enum)]
    pub execution_environment: Option<ExecutionEnvironmentArg>,
    /// Start an execution once the job is written.
    #[arg(long)]
    pub execute_now: bool,
    /// With --execute-now: follow the execution to its end.
    #[arg(long, requires = "execute_now")]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ExecuteArgs {
    /// The job's id.
    pub job: String,
    /// Tasks this execution runs, instead of the job's.
    #[arg(long)]
    pub tasks: Option<u32>,
    /// Each attempt's timeout in this execution, instead of the job's.
    #[arg(long)]
    pub task_timeout: Option<String>,
    /// The container's arguments in this execution, comma-separated ("" for none).
    #[arg(long, allow_hyphen_values = true)]
    pub args: Option<String>,
    /// KEY=VALUE,...: env vars set or changed in this execution.
    #[arg(long)]
    pub update_env_vars: Option<String>,
    /// Follow the execution to its end (its progress on stderr); fail when it fails.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn not_found(client: &ApiClient, job: &str) -> anyhow::Error {
    anyhow!(
        "job [{job}] does not exist in project [{}] region [{}]",
        client.project,
        client.region
    )
}

fn count(n: u32) -> i32 {
    // Beyond i32 the API refuses it as out of range, as it should.
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn apply_container_flags(c: &mut Container, args: &JobArgs) -> anyhow::Result<()> {
    if let Some(image) = &args.image {
        c.image = image.clone();
    }
    if let Some(memory) = &args.memory {
        let r = c.resources.get_or_insert_with(Default::default);
        r.limits.insert("memory".into(), memory.clone());
    }
    if let Some(cpu) = &args.cpu {
        let r = c.resources.get_or_insert_with(Default::default);
        r.limits.insert("cpu".into(), cpu.clone());
    }
    if let Some(command) = &args.command {
        c.command = split_list(command);
    }
    if let Some(a) = &args.args {
        c.args = split_list(a);
    }
    Ok(())
}

/// Changes `job` (the stored one, or a new one) as the flags say.
pub fn apply_job_flags(job: &mut Job, args: &JobArgs) -> anyhow::Result<()> {
    let template: &mut ExecutionTemplate = job.template.get_or_insert_with(Default::default);
    if let Some(n) = args.tasks {
        template.task_count = count(n);
    }
    if let Some(n) = args.parallelism {
        template.parallelism = count(n);
    }
    let task = template.template.get_or_insert_with(Default::default);
    if let Some(n) = args.max_retries {
        task.max_retries = Some(count(n));
    }
    if let Some(t) = &args.task_timeout {
        task.timeout = Some(api::Duration::from_secs(parse_duration_secs(
            t,
            "--task-timeout",
        )?));
    }
    if let Some(account) = &args.service_account {
        task.service_account = account.clone();
    }
    if let Some(env) = args.execution_environment {
        task.execution_environment = env.into();
    }
    match task.containers.len() {
        0 => task.containers.push(Container::default()),
        1 => {}
        _ => bail!(
            "job [{}] has several containers: homerun changes jobs of one container only",
            args.job
        ),
    }
    apply_container_flags(&mut task.containers[0], args)?;
    apply_env_and_secrets(
        &args.env,
        &args.secrets,
        &mut task.containers,
        0,
        &mut task.volumes,
    )
}

/// The overrides of one execution the flags ask for (`None`: the job as it is).
pub fn overrides(args: &ExecuteArgs) -> anyhow::Result<Option<Overrides>> {
    let mut container = ContainerOverride::default();
    if let Some(a) = &args.args {
        container.args = split_list(a);
        container.clear_args = container.args.is_empty();
    }
    if let Some(update) = &args.update_env_vars {
        container.env = parse_dict(update, "--update-env-vars")?
            .into_iter()
            .map(|(k, v)| EnvVar::new(k, v))
            .collect();
    }
    let mut o = Overrides::default();
    if container != ContainerOverride::default() {
        o.container_overrides.push(container);
    }
    if let Some(n) = args.tasks {
        o.task_count = count(n);
    }
    if let Some(t) = &args.task_timeout {
        o.timeout = Some(api::Duration::from_secs(parse_duration_secs(
            t,
            "--task-timeout",
        )?));
    }
    Ok((o != Overrides::default()).then_some(o))
}

pub async fn run(client: &ApiClient, cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Create(args) => create(client, *args).await,
        JobsCommand::Update(args) => update(client, *args).await,
        JobsCommand::Execute(args) => {
            let overrides = overrides(&args)?;
            execute(client, &args.job, overrides, args.wait, &args.output).await
        }
        JobsCommand::List { output } => list(client, output).await,
        JobsCommand::Describe { job, output } => {
            let value = client
                .get_job(&job)
                .await?
                .ok_or_else(|| not_found(client, &job))?;
            if !output.print_structured(&value)? {
                print!(
                    "{}",
                    describe_text(&parse_resource(value, "job")?, &client.region)
                );
            }
            Ok(())
        }
        JobsCommand::Schedule {
            job,
            cron,
            time_zone,
            clear,
        } => schedule(client, &job, cron, time_zone, clear).await,
        JobsCommand::Delete {
            job,
            quiet: _,
            output,
        } => {
            let operation = client.delete_job(&job).await?;
            operation::wait(client, operation.clone()).await?;
            if !output.print_structured(&operation)? {
                eprintln!("Deleted job [{job}].");
            }
            Ok(())
        }
        JobsCommand::Iam(cmd) => iam::run(client, cmd, IamResource::Job).await,
    }
}

/// Adds a schedule to the job's `homerun.dev/schedules` annotation (or clears them), by
/// a PATCH of the annotations alone.
async fn schedule(
    client: &ApiClient,
    id: &str,
    cron: Option<String>,
    time_zone: String,
    clear: bool,
) -> anyhow::Result<()> {
    use api::schedule::{ScheduleSpec, SCHEDULES_ANNOTATION};
    let stored: Job = parse_resource(
        client
            .get_job(id)
            .await?
            .ok_or_else(|| not_found(client, id))?,
        "job",
    )?;
    let mut annotations = stored.annotations.clone();
    let mut schedules: Vec<ScheduleSpec> = match annotations.get(SCHEDULES_ANNOTATION) {
        Some(text) if !clear => serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("the job's {SCHEDULES_ANNOTATION} annotation: {e}"))?,
        _ => Vec::new(),
    };
    if let Some(cron) = cron {
        let spec = ScheduleSpec { cron, time_zone };
        // Checked here too, for a message before anything is sent.
        api::schedule::Schedule::parse(&spec).map_err(anyhow::Error::msg)?;
        if !schedules.contains(&spec) {
            schedules.push(spec);
        }
    }
    if schedules.is_empty() {
        annotations.remove(SCHEDULES_ANNOTATION);
    } else {
        annotations.insert(
            SCHEDULES_ANNOTATION.into(),
            serde_json::to_string(&schedules)?,
        );
    }
    let body = Job {
        annotations,
        ..Default::default()
    };
    let operation = client
        .update_job(
            id,
            &api::json::to_value(&body, EnumEncoding::Name),
            "annotations",
        )
        .await?;
    operation::wait(client, operation).await?;
    if schedules.is_empty() {
        eprintln!("Job [{id}] runs on no schedule.");
    } else {
        for s in &schedules {
            let tz = if s.time_zone.is_empty() {
                "UTC"
            } else {
                &s.time_zone
            };
            eprintln!("Job [{id}] runs at \"{}\" ({tz}).", s.cron);
        }
    }
    Ok(())
}

async fn create(client: &ApiClient, args: JobArgs) -> anyhow::Result<()> {
    let id = args.job.clone();
    eprintln!(
        "Creating homerun job [{id}] in project [{}] region [{}]",
        client.project, client.region
    );
    if args.image.is_none() {
        bail!("--image is required to create job [{id}]");
    }
    let mut job = Job::default();
    apply_job_flags(&mut job, &args)?;
    let operation = client
        .create_job(&id, &api::json::to_value(&job, EnumEncoding::Name))
        .await?;
    operation::wait(client, operation).await?;
    eprintln!("Job [{id}] has successfully been created.");
    after_write(client, &args).await
}

async fn update(client: &ApiClient, args: JobArgs) -> anyhow::Result<()> {
    let id = args.job.clone();
    eprintln!(
        "Updating homerun job [{id}] in project [{}] region [{}]",
        client.project, client.region
    );
    let stored: Job = parse_resource(
        client
            .get_job(&id)
            .await?
            .ok_or_else(|| not_found(client, &id))?,
        "job",
    )?;
    let mut job = stored.clone();
    apply_job_flags(&mut job, &args)?;
    // Only the template: what else the job has (labels...) stays as it is stored.
    let body = Job {
        template: job.template,
        ..Default::default()
    };
    let operation = client
        .update_job(
            &id,
            &api::json::to_value(&body, EnumEncoding::Name),
            "template",
        )
        .await?;
    let op = operation::wait(client, operation).await?;
    let generation = op
        .response
        .as_ref()
        .and_then(|r| r.as_job())
        .map(|j| j.generation);
    if generation == Some(stored.generation) {
        step("Nothing changed.");
    }
    eprintln!("Job [{id}] has successfully been updated.");
    after_write(client, &args).await
}

/// After a create or an update: the execution `--execute-now` asks for, or the job.
async fn after_write(client: &ApiClient, args: &JobArgs) -> anyhow::Result<()> {
    if args.execute_now {
        return execute(client, &args.job, None, args.wait, &args.output).await;
    }
    eprintln!(
        "To execute this job, use: homerun jobs execute {}",
        args.job
    );
    if args.output.format != super::output::Format::Text {
        let value = client
            .get_job(&args.job)
            .await?
            .ok_or_else(|| not_found(client, &args.job))?;
        args.output.print_structured(&value)?;
    }
    Ok(())
}

/// `:run`, followed to its end with `wait`. Prints the execution (its id as text).
async fn execute(
    client: &ApiClient,
    job: &str,
    overrides: Option<Overrides>,
    wait: bool,
    output: &OutputArgs,
) -> anyhow::Result<()> {
    eprintln!("Creating an execution of homerun job [{job}]...");
    let request = match &overrides {
        Some(o) => json!({ "overrides": api::json::to_value(o, EnumEncoding::Name) }),
        None => json!({}),
    };
    let op = operation::parse(client.run_job(job, &request).await?)?;
    let execution: Execution = op
        .metadata
        .as_ref()
        .and_then(|m| m.as_execution())
        .cloned()
        .ok_or_else(|| anyhow!("the API answered :run with no execution in its operation"))?;
    let id = execution.id().to_string();
    step(&format!("Created execution [{id}]."));
    let value = if wait {
        let value = executions::follow(client, op, &execution).await?;
        eprintln!("Execution [{id}] has successfully completed.");
        value
    } else {
        eprintln!("Execution [{id}] has started.");
        step(&format!(
            "Follow it with `homerun executions describe {id}`, its logs with `homerun executions logs {id}`."
        ));
        match client.get_execution(job, &id).await? {
            Some(v) => v,
            None => api::json::to_value(&execution, EnumEncoding::Name),
        }
    };
    if !output.print_structured(&value)? {
        println!("{id}");
    }
    Ok(())
}

async fn list(client: &ApiClient, output: OutputArgs) -> anyhow::Result<()> {
    let Some(values) = output.items_for_table(client.list_jobs().await?)? else {
        return Ok(());
    };
    let mut table = Table::new([
        "",
        "JOB",
        "REGION",
        "EXECUTIONS",
        "LAST EXECUTION",
        "LAST RUN AT",
        "CREATED",
    ]);
    for value in values {
        let j: Job = parse_resource(value, "job")?;
        let latest = j.latest_created_execution.clone().unwrap_or_default();
        table.row(vec![
            ready_mark(j.terminal_condition.as_ref()).to_string(),
            j.id().to_string(),
            client.region.clone(),
            j.execution_count.to_string(),
            short_name(&latest.name).to_string(),
            latest
                .create_time
                .map(|t| t.to_string())
                .unwrap_or_default(),
            j.create_time.map(|t| t.to_string()).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// How the latest execution a job names stands.
fn completion_text(status: api::CompletionStatus) -> &'static str {
    match status {
        api::CompletionStatus::Succeeded => "succeeded",
        api::CompletionStatus::Failed => "failed",
        api::CompletionStatus::Running => "running",
        api::CompletionStatus::Pending => "pending",
        api::CompletionStatus::Cancelled => "cancelled",
        api::CompletionStatus::Unspecified => "unknown",
    }
}

/// The text view of a job.
pub fn describe_text(j: &Job, region: &str) -> String {
    let mut out = format!(
        "{} Job {} in region {region}\n\n",
        ready_mark(j.terminal_condition.as_ref()),
        j.id()
    );
    match &j.latest_created_execution {
        Some(latest) if !latest.name.is_empty() => {
            let times = if j.execution_count == 1 {
                "time"
            } else {
                "times"
            };
            out.push_str(&format!("Executed {} {times}\n", j.execution_count));
            let when = latest
                .create_time
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "Last executed{when} with execution {} ({})\n",
                short_name(&latest.name),
                completion_text(latest.completion_status)
            ));
        }
        _ => out.push_str("Never executed\n"),
    }
    if let Some(c) = j
        .terminal_condition
        .as_ref()
        .filter(|c| !c.message.is_empty())
    {
        out.push_str(&format!("Status: {}\n", c.message));
    }
    out.push('\n');
    let template = j.template.clone().unwrap_or_default();
    let task = template.template.clone().unwrap_or_default();
    out.push_str(&render_spec(
        &task.containers,
        &task.volumes,
        Workload::Job,
        &task_settings(Some((template.task_count, template.parallelism)), &task),
        "",
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(job: &str) -> JobArgs {
        JobArgs {
            job: job.into(),
            ..Default::default()
        }
    }

    #[test]
    fn flags_change_only_what_they_name() {
        let mut job = Job::default();
        let mut a = args("j");
        a.image = Some("example/job:1".into());
        a.tasks = Some(5);
        a.parallelism = Some(2);
        a.max_retries = Some(0);
        a.task_timeout = Some("1h".into());
        a.env.set_env_vars = Some("A=1,B=2".into());
        a.memory = Some("1Gi".into());
        a.args = Some("--x,y".into());
        apply_job_flags(&mut job, &a).unwrap();
        let t = job.template.as_ref().unwrap();
        assert_eq!((t.task_count, t.parallelism), (5, 2));
        let task = t.template.as_ref().unwrap();
        assert_eq!(task.max_retries, Some(0));
        assert_eq!(task.timeout, Some(api::Duration::from_secs(3600)));
        let c = &task.containers[0];
        assert_eq!(c.image, "example/job:1");
        assert_eq!(c.env, [EnvVar::new("A", "1"), EnvVar::new("B", "2")]);
        assert_eq!(c.resources.as_ref().unwrap().limits["memory"], "1Gi");
        assert_eq!(c.args, ["--x", "y"]);

        let mut b = args("j");
        b.env.update_env_vars = Some("B=3".into());
        b.tasks = Some(7);
        apply_job_flags(&mut job, &b).unwrap();
        let t = job.template.as_ref().unwrap();
        assert_eq!((t.task_count, t.parallelism), (7, 2));
        let task = t.template.as_ref().unwrap();
        assert_eq!(task.max_retries, Some(0));
        let c = &task.containers[0];
        assert_eq!(c.image, "example/job:1");
        assert_eq!(c.env, [EnvVar::new("A", "1"), EnvVar::new("B", "3")]);
        assert_eq!(c.args, ["--x", "y"]);
    }

    #[test]
    fn overrides_of_the_flags() {
        let none = ExecuteArgs {
            job: "j".into(),
            ..Default::default()
        };
        assert_eq!(overrides(&none).unwrap(), None);
        let some = ExecuteArgs {
            job: "j".into(),
            tasks: Some(3),
            task_timeout: Some("90".into()),
            args: Some(String::new()),
            update_env_vars: Some("MODE=fast".into()),
            ..Default::default()
        };
        let o = overrides(&some).unwrap().unwrap();
        assert_eq!(o.task_count, 3);
        assert_eq!(o.timeout, Some(api::Duration::from_secs(90)));
        assert_eq!(
            o.container_overrides,
            [ContainerOverride {
                clear_args: true,
                env: vec![EnvVar::new("MODE", "fast")],
                ..Default::default()
            }]
        );
    }
}
