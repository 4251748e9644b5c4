//! IAM policies of services, jobs, secrets and projects, as gcloud's `add-iam-policy-binding`,
//! `remove-iam-policy-binding` and `get-iam-policy` change and show them: a
//! read-modify-write of the whole policy with the etag it was read with, tried once
//! more when another writer came between (409 `ABORTED`). The policy is printed as
//! gcloud does, in YAML unless `--format json`.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use api::iam::{validate_member, validate_role, Policy, ALL_USERS};
use api::EnumEncoding;

use super::client::{is_aborted, parse_resource, ApiClient, IamResource};
use super::output::{Format, OutputArgs};

/// The role that lets a principal call a service (or run a job).
pub const INVOKER_ROLE: &str = "roles/run.invoker";

fn to_value(policy: &Policy) -> Value {
    api::json::to_value(policy, EnumEncoding::Name)
}

/// Grants `role` to `member`; whether that changed the policy.
fn add(policy: &mut Policy, member: &str, role: &str) -> bool {
    let before = policy.bindings.clone();
    policy.add_member(role, member);
    policy.bindings != before
}

/// Checks `--member` and `--role` as the API will, before anything is read.
fn check(member: &str, role: &str) -> anyhow::Result<()> {
    validate_member(member).map_err(|e| anyhow!("--member: {e}"))?;
    validate_role(role).map_err(|e| anyhow!("--role: {e}"))
}

/// Reads the policy, changes it with `change` (which says whether it changed anything)
/// and writes it back with the etag it was read with; once more when another writer
/// came between. An unchanged policy is not written. The policy as it then is.
pub async fn modify(
    client: &ApiClient,
    resource: &IamResource,
    mut change: impl FnMut(&mut Policy) -> anyhow::Result<bool>,
) -> anyhow::Result<Policy> {
    let mut retried = false;
    loop {
        let mut policy: Policy =
            parse_resource(client.get_iam_policy(resource).await?, "IAM policy")?;
        if !change(&mut policy)? {
            return Ok(policy);
        }
        match client.set_iam_policy(resource, &to_value(&policy)).await {
            Ok(written) => return parse_resource(written, "IAM policy"),
            Err(e) if !retried && is_aborted(&e) => retried = true,
            Err(e) => return Err(e),
        }
    }
}

/// Makes a service public (`allUsers` as invoker) or not, as `deploy
/// --[no-]allow-unauthenticated` asks.
pub async fn set_public(client: &ApiClient, service: &str, public: bool) -> anyhow::Result<()> {
    let resource = IamResource::Service(service.to_string());
    modify(client, &resource, |p| {
        Ok(if public {
            add(p, ALL_USERS, INVOKER_ROLE)
        } else {
            p.remove_member(INVOKER_ROLE, ALL_USERS)
        })
    })
    .await?;
    Ok(())
}

/// The IAM verbs of `services`, `jobs`, `secrets` and `projects`.
#[derive(Subcommand, Debug)]
pub enum IamCommand {
    /// Grant a role to a member, on a service, a job, a secret or a project.
    AddIamPolicyBinding {
        /// The service's, job's, secret's or project's id.
        name: String,
        #[command(flatten)]
        binding: BindingArgs,
    },
    /// Take a role from a member, on a service, a job, a secret or a project.
    RemoveIamPolicyBinding {
        /// The service's, job's, secret's or project's id.
        name: String,
        #[command(flatten)]
        binding: BindingArgs,
    },
    /// Show the IAM policy of a service, a job, a secret or a project.
    GetIamPolicy {
        /// The service's, job's, secret's or project's id.
        name: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Runs an IAM verb on what `resource` makes of its name.
pub async fn run(
    client: &ApiClient,
    cmd: IamCommand,
    resource: fn(String) -> IamResource,
) -> anyhow::Result<()> {
    match cmd {
        IamCommand::AddIamPolicyBinding { name, binding } => {
            add_binding(client, resource(name), binding).await
        }
        IamCommand::RemoveIamPolicyBinding { name, binding } => {
            remove_binding(client, resource(name), binding).await
        }
        IamCommand::GetIamPolicy { name, output } => get(client, resource(name), output).await,
    }
}

/// `--member` and `--role` of the binding verbs.
#[derive(Args, Debug, Clone)]
pub struct BindingArgs {
    /// Who: allUsers, allAuthenticatedUsers, user:EMAIL, serviceAccount:EMAIL, group:EMAIL,
    /// domain:DOMAIN.
    #[arg(long)]
    pub member: String,
    /// The role, e.g. roles/run.invoker.
    #[arg(long)]
    pub role: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `add-iam-policy-binding`.
async fn add_binding(
    client: &ApiClient,
    resource: IamResource,
    args: BindingArgs,
) -> anyhow::Result<()> {
    check(&args.member, &args.role)?;
    let policy = modify(client, &resource, |p| Ok(add(p, &args.member, &args.role))).await?;
    eprintln!("Updated IAM policy for {}.", resource.describe());
    args.output.print_or_yaml(&to_value(&policy))
}

/// `remove-iam-policy-binding`: a binding that is not there is an error, as in gcloud.
async fn remove_binding(
    client: &ApiClient,
    resource: IamResource,
    args: BindingArgs,
) -> anyhow::Result<()> {
    let policy = modify(client, &resource, |p| {
        if p.remove_member(&args.role, &args.member) {
            Ok(true)
        } else {
            bail!(
                "Policy binding with the specified principal [{}] and role [{}] not found in the policy of {}.",
                args.member,
                args.role,
                resource.describe()
            )
        }
    })
    .await?;
    eprintln!("Updated IAM policy for {}.", resource.describe());
    args.output.print_or_yaml(&to_value(&policy))
}

/// `get-iam-policy`.
async fn get(client: &ApiClient, resource: IamResource, output: OutputArgs) -> anyhow::Result<()> {
    let policy: Policy = parse_resource(client.get_iam_policy(&resource).await?, "IAM policy")?;
    if output.format == Format::Text && policy.bindings.is_empty() {
        eprintln!("The IAM policy of {} has no bindings.", resource.describe());
    }
    output.print_or_yaml(&to_value(&policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_says_whether_it_changed_anything() {
        let mut p = Policy::default();
        assert!(add(&mut p, ALL_USERS, INVOKER_ROLE));
        assert!(!add(&mut p, ALL_USERS, INVOKER_ROLE));
        assert!(add(&mut p, "user:a@example.com", INVOKER_ROLE));
        assert_eq!(p.bindings.len(), 1);
        assert_eq!(
            to_value(&p)["bindings"][0]["members"][1],
            "user:a@example.com"
        );
    }

    #[test]
    fn flags_checked_before_any_call() {
        check("user:a@example.com", INVOKER_ROLE).unwrap();
        check(ALL_USERS, "roles/run.developer").unwrap();
        let e = check("alice@example.com", INVOKER_ROLE)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--member: "), "{e}");
        let e = check(ALL_USERS, "roles/nope").unwrap_err().to_string();
        assert!(e.starts_with("--role: "), "{e}");
    }
}
