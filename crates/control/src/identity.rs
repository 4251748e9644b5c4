//! Who an instance is and what secrets it holds, settled just before it starts: its
//! identity goes into the metadata server's [`identity::Directory`] (so the instance is
//! known from its first request to it, by its address), the metadata server's address into
//! its environment, and its secrets, resolved and opened now (so `latest` means the latest
//! at this start, as on Cloud Run), into its environment and secret volumes.

use std::net::Ipv4Addr;
use std::sync::Arc;

use runtime::instance::{FileVolume, InstanceSpec, VolumeFile};
use store::Store;

use crate::spec::{ContainerPlan, SecretRef, SecretVolumePlan};

/// What the platform gives instances an identity with.
pub struct Identities {
    pub directory: Arc<identity::Directory>,
    /// Where secrets are stored, sealed.
    pub store: Arc<dyn Store>,
    pub sealer: Arc<dyn api::Sealer>,
    /// The location instances report as their region.
    pub region: String,
    /// The metadata server's address (homerun's bridge gateway): `GCE_METADATA_HOST` and
    /// `GCE_METADATA_IP`, so Google's libraries never try 169.254.169.254.
    pub metadata_ip: Ipv4Addr,
}

/// What one revision's or execution's instances are, by their template.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdentityPlan {
    pub project: String,
    pub service_account: String,
    /// Per container, in the instance spec's order.
    pub secret_env: Vec<Vec<(String, SecretRef)>>,
    pub secret_volumes: Vec<SecretVolumePlan>,
}

impl IdentityPlan {
    pub(crate) fn new(
        project: &str,
        service_account: &str,
        containers: &[ContainerPlan],
        secret_volumes: &[SecretVolumePlan],
    ) -> IdentityPlan {
        IdentityPlan {
            project: project.to_string(),
            service_account: service_account.to_string(),
            secret_env: containers.iter().map(|c| c.secret_env.clone()).collect(),
            secret_volumes: secret_volumes.to_vec(),
        }
    }

    fn has_secrets(&self) -> bool {
        !self.secret_volumes.is_empty() || self.secret_env.iter().any(|e| !e.is_empty())
    }
}

/// An instance's entry in the metadata server's directory, removed when dropped.
pub(crate) struct Registration {
    entry: Option<(Arc<identity::Directory>, Arc<identity::InstanceIdentity>)>,
    instance: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some((directory, entry)) = &self.entry {
            directory.unregister(&self.instance, entry);
        }
    }
}

/// Whether `service_account` may read `reference` (Cloud Run's rule: the revision's
/// account needs `secretmanager.versions.access` on the secret or its project), with
/// Cloud Run's message when not.
fn check_secret_access(
    store: &dyn store::Store,
    project: &str,
    service_account: &str,
    reference: &SecretRef,
) -> Result<(), String> {
    let (secret_project, id) = api::secret::parse_secret_ref(project, &reference.secret)?;
    let names = [
        format!("projects/{secret_project}"),
        format!("projects/{secret_project}/secrets/{id}"),
    ];
    let mut policies = Vec::with_capacity(names.len());
    for name in &names {
        policies.push(
            api::iam::load_policy(store, name)
                .map_err(|e| format!("reading the IAM policy of {name}: {e}"))?,
        );
    }
    let refs: Vec<&api::iam::Policy> = policies.iter().collect();
    let member = format!("serviceAccount:{service_account}");
    if api::iam::policy_allows(&refs, &member, "secretmanager.versions.access") {
        Ok(())
    } else {
        Err(format!(
            "Permission denied on secret: projects/{secret_project}/secrets/{id}/versions/{} for \
             service account {service_account}. The service account used must be granted the \
             'Secret Manager Secret Accessor' role (roles/secretmanager.secretAccessor) at the \
             secret, project or higher level.",
            reference.version
        ))
    }
}

/// Completes `spec` for `plan` and registers the instance. Without `identities` (a
/// controller built without them, in tests) instances get no identity, and secrets are
/// an error.
pub(crate) fn prepare(
    identities: Option<&Identities>,
    plan: &IdentityPlan,
    spec: &mut InstanceSpec,
) -> Result<Registration, String> {
    let Some(ids) = identities else {
        if plan.has_secrets() {
            return Err("this homerun has no sealing key, so it cannot give secrets".into());
        }
        return Ok(Registration {
            entry: None,
            instance: spec.id.clone(),
        });
    };
    let service_account = if plan.service_account.is_empty() {
        // The API fills this in; records written before it did lack it.
        api::naming::default_service_account(&plan.project)
    } else {
        plan.service_account.clone()
    };
    let open = |r: &SecretRef| {
        check_secret_access(&*ids.store, &plan.project, &service_account, r)?;
        api::resolve_secret(
            &*ids.store,
            &*ids.sealer,
            &plan.project,
            &r.secret,
            &r.version,
        )
        .map_err(|e| format!("{e}"))
    };
    for (container, env) in spec.containers.iter_mut().zip(&plan.secret_env) {
        for (name, reference) in env {
            let value = open(reference)?;
            let value = String::from_utf8(value).map_err(|_| {
                format!("secret {reference:?} for environment variable {name} is not UTF-8 text")
            })?;
            container.overrides.env.push((name.clone(), value));
        }
    }
    for v in &plan.secret_volumes {
        let mut files = Vec::with_capacity(v.files.len());
        for (path, reference, mode) in &v.files {
            files.push(VolumeFile {
                path: path.clone(),
                contents: open(reference)?,
                mode: *mode,
            });
        }
        spec.file_volumes.push(FileVolume {
            name: v.name.clone(),
            files,
        });
    }
    let ip = ids.metadata_ip.to_string();
    spec.platform_env
        .push(("GCE_METADATA_HOST".into(), ip.clone()));
    spec.platform_env.push(("GCE_METADATA_IP".into(), ip));
    let entry = ids.directory.register(
        &spec.id,
        identity::InstanceIdentity {
            project_id: plan.project.clone(),
            project_number: api::naming::project_number(&plan.project),
            region: ids.region.clone(),
            service_account,
            instance_id: identity::new_instance_id(),
        },
    )?;
    Ok(Registration {
        entry: Some((ids.directory.clone(), entry)),
        instance: spec.id.clone(),
    })
}
