//! One reconcile pass: store → revision tasks, routing table, status, operations.

use std::collections::HashMap;

use api::condition::types;
use api::http::{EXECUTION_KIND, JOB_KIND, OPERATION_KIND, REVISION_KIND, SERVICE_KIND};
use api::{
    Condition, ConditionState, EnumEncoding, Execution, Job, Operation, Revision, Service, Status,
};
use store::{Precondition, Record, Store};

use crate::spec::RevisionPlan;
use crate::status::{self, RevisionState};
use crate::{lock, Controller};

impl Controller {
    /// Who may invoke a service, for the router: its ingress, whether it is public
    /// (`invokerIamDisabled`, or `allUsers` holding the invoker role), the members that
    /// hold `run.routes.invoke` on it or its project, and the ID-token audiences it
    /// accepts (its URLs, its tags' URLs, its `customAudiences`). A policy that cannot be
    /// read counts as empty: the service stays closed rather than open.
    fn access(
        &self,
        s: &api::Service,
        project: &str,
        id: &str,
        tags: &[(String, String)],
    ) -> router::Access {
        let policy = |name: &str| {
            api::iam::load_policy(&*self.store, name).unwrap_or_else(|e| {
                tracing::warn!(resource = %name, "reading an IAM policy: {e}");
                Default::default()
            })
        };
        let service_policy = policy(&s.name);
        let project_policy = policy(&format!("projects/{project}"));
        let invokers: Vec<String> =
            api::iam::members_granted(&[&service_policy, &project_policy], "run.routes.invoke")
                .into_iter()
                .collect();
        let endpoint = &self.config.endpoint;
        let mut schemes = vec![(endpoint.scheme.as_str(), endpoint.port)];
        if let Some(port) = self.config.https_port {
            schemes.push(("https", port));
        }
        let urls = |host: String| -> Vec<String> {
            schemes
                .iter()
                .map(|(scheme, port)| format!("{scheme}://{host}:{port}"))
                .collect()
        };
        // The router answers both host forms in the default project, so both are URLs of
        // the service.
        let hosts = |label: &str| {
            let mut hosts = vec![endpoint.service_host(project, label)];
            let qualified = format!("{label}.{project}.{}", endpoint.domain);
            if !hosts.contains(&qualified) {
                hosts.push(qualified);
            }
            hosts
        };
        let mut audiences: Vec<String> = hosts(id).into_iter().flat_map(urls).collect();
        for (tag, _) in tags {
            audiences.extend(hosts(&format!("{tag}---{id}")).into_iter().flat_map(urls));
        }
        audiences.extend(s.custom_audiences.iter().cloned());
        router::Access {
            ingress: match s.ingress {
                api::IngressTraffic::InternalOnly => router::Ingress::InternalOnly,
                api::IngressTraffic::None => router::Ingress::None,
                // The API refuses INTERNAL_LOAD_BALANCER (homerun has no load balancer)
                // and defaults UNSPECIFIED to ALL.
                _ => router::Ingress::All,
            },
            public: s.invoker_iam_disabled || invokers.iter().any(|m| m == api::iam::ALL_USERS),
            invokers,
            audiences,
        }
    }

    /// Reads everything, then acts. Errors are logged: the next pass tries again.
    pub(crate) fn pass(&self) {
        if let Err(e) = self.try_pass() {
            tracing::warn!("reconcile pass: {e}");
        }
    }

    fn try_pass(&self) -> Result<(), crate::ControlError> {
        let services: Vec<(Service, u64)> = list_all(&*self.store, SERVICE_KIND)?;
        let mut revisions: Vec<(Revision, u64)> = list_all(&*self.store, REVISION_KIND)?;

        // Verdicts of readiness checks go into the revisions first.
        let verdicts: Vec<(String, Result<(), String>)> = lock(&self.verdicts)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, result) in verdicts {
            match revisions.iter_mut().find(|(r, _)| r.name == name) {
                Some((r, revision)) => {
                    if self.write_verdict(r, revision, &result)? {
                        lock(&self.verdicts).remove(&name);
                    }
                }
                // Deleted meanwhile.
                None => {
                    lock(&self.verdicts).remove(&name);
                }
            }
        }

        let states: HashMap<String, RevisionState> = revisions
            .iter()
            .map(|(r, _)| (r.name.clone(), revision_state(r)))
            .collect();
        let by_name: HashMap<&str, &Revision> = revisions
            .iter()
            .map(|(r, _)| (r.name.as_str(), r))
            .collect();

        // Which revisions need a task: those not yet proven (to prove them), and those
        // traffic or a tag points at.
        let mut wanted: HashMap<String, bool> = HashMap::new();
        for (r, _) in &revisions {
            if states[&r.name].state == ConditionState::Pending {
                wanted.insert(r.name.clone(), true);
            }
        }
        let mut routes = Vec::new();
        let mut views = Vec::new();
        for (s, revision) in &services {
            let view = status::view(s, &states, &self.config.endpoint);
            for name in view.serving() {
                if states.get(name).map(|r| r.state) == Some(ConditionState::Succeeded) {
                    wanted.entry(name.to_string()).or_insert(false);
                }
            }
            let (project, id) = status::project_and_id(&s.name);
            routes.push(router::ServiceRoutes {
                project: project.to_string(),
                service: id.to_string(),
                traffic: view
                    .split
                    .iter()
                    .map(|(r, p)| router::TrafficTarget {
                        revision: r.clone(),
                        percent: *p,
                    })
                    .collect(),
                access: self.access(s, project, id, &view.tags),
                tags: view.tags.clone(),
            });
            views.push((s, *revision, view));
        }

        for (name, check) in &wanted {
            let Some(r) = by_name.get(name.as_str()) else {
                continue;
            };
            match RevisionPlan::from_revision(r) {
                Ok(plan) => self.ensure_task(plan, *check),
                Err(e) => {
                    lock(&self.verdicts).insert(name.clone(), Err(e.to_string()));
                }
            }
        }
        // Tasks exist before the table sends requests their way; the table stops
        // naming a revision before its task retires.
        self.platform
            .router
            .table()
            .store(router::RoutingTable::new(
                &self.config.domain,
                &self.config.default_project,
                routes,
            ));
        self.retire_others(wanted);

        let executions: Vec<Execution> = list_all(&*self.store, EXECUTION_KIND)?
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        self.jobs.pass(&executions, &self.outcomes_tx);
        let jobs: Vec<Job> = list_all(&*self.store, JOB_KIND)?
            .into_iter()
            .map(|(j, _)| j)
            .collect();
        crate::jobs::schedule::run_due(
            &self.store,
            &self.config.endpoint,
            &jobs,
            chrono::Utc::now(),
        );

        let operations: Vec<(Operation, u64)> = list_all(&*self.store, OPERATION_KIND)?;
        for (s, revision, view) in views {
            let mut updated = s.clone();
            if status::apply(&mut updated, &view) {
                let doc = api::json::to_value(&updated, EnumEncoding::Name);
                match self
                    .store
                    .put(SERVICE_KIND, &s.name, doc, Precondition::Revision(revision))
                {
                    Ok(_) => {}
                    // The API wrote it meanwhile: the next pass sees the new one.
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            if view.settled {
                self.finish_operations(&updated, &view, &operations);
            }
        }
        Ok(())
    }

    /// Writes a readiness verdict into a revision; false when the revision changed under
    /// it (try again next pass).
    fn write_verdict(
        &self,
        r: &mut Revision,
        revision: &mut u64,
        result: &Result<(), String>,
    ) -> Result<bool, crate::ControlError> {
        let (state, message) = match result {
            Ok(()) => (ConditionState::Succeeded, String::new()),
            Err(e) => (ConditionState::Failed, e.clone()),
        };
        // An image that cannot be had is a resource problem (the container never ran);
        // anything else is the container's health.
        let image_problem = message.starts_with("Image '");
        for c in r.conditions.iter_mut() {
            let new_state = match (state, c.kind.as_str()) {
                (ConditionState::Succeeded, _) => ConditionState::Succeeded,
                (_, types::READY) => ConditionState::Failed,
                (_, types::RESOURCES_AVAILABLE) if !image_problem => ConditionState::Succeeded,
                (_, types::CONTAINER_HEALTHY) if image_problem => continue,
                (_, types::RESOURCES_AVAILABLE | types::CONTAINER_HEALTHY) => {
                    ConditionState::Failed
                }
                _ => continue,
            };
            let mut new = Condition::new(c.kind.clone(), new_state);
            if new_state == ConditionState::Failed {
                new.message = message.clone();
            }
            *c = new;
        }
        r.reconciling = false;
        r.observed_generation = r.generation;
        r.etag = String::new();
        r.etag = r.compute_etag();
        let doc = api::json::to_value(&*r, EnumEncoding::Name);
        match self.store.put(
            REVISION_KIND,
            &r.name,
            doc,
            Precondition::Revision(*revision),
        ) {
            Ok(new) => {
                *revision = new;
                Ok(true)
            }
            Err(e) if e.is_conflict() || matches!(e, store::StoreError::NotFound { .. }) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Finishes the running operations of `service` up to its generation: with the
    /// service when it is ready, else with why not.
    fn finish_operations(
        &self,
        service: &Service,
        view: &status::ServiceView,
        operations: &[(Operation, u64)],
    ) {
        for (op, _) in operations {
            if op.done {
                continue;
            }
            let Some(target) = op.metadata.as_ref().and_then(|m| m.as_service()) else {
                continue;
            };
            if target.name != service.name || target.generation > service.generation {
                continue;
            }
            let ready = view.ready();
            let result = if ready.state == ConditionState::Succeeded {
                Ok(api::json::to_value(service, EnumEncoding::Name))
            } else {
                Err(Status::failed_precondition(ready.message.clone()))
            };
            if let Err(e) = api::complete_operation(&*self.store, &op.name, result) {
                tracing::warn!(operation = %op.name, "finishing: {}", e.message);
            }
        }
    }
}

/// A revision's state as its `Ready` condition says.
fn revision_state(r: &Revision) -> RevisionState {
    let ready = r.conditions.iter().find(|c| c.kind == types::READY);
    RevisionState {
        state: match ready.map(|c| c.state) {
            Some(ConditionState::Succeeded) => ConditionState::Succeeded,
            Some(ConditionState::Failed) => ConditionState::Failed,
            _ => ConditionState::Pending,
        },
        message: ready.map(|c| c.message.clone()).unwrap_or_default(),
    }
}

/// Every record of `kind`, parsed; unreadable ones are skipped with a warning.
fn list_all<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: &str,
) -> Result<Vec<(T, u64)>, crate::ControlError> {
    list_under(store, kind, "")
}

/// Every record of `kind` below `parent` (all for an empty one), parsed.
pub(crate) fn list_under<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: &str,
    parent: &str,
) -> Result<Vec<(T, u64)>, crate::ControlError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list(kind, parent, store::MAX_PAGE_SIZE, token.as_deref())?;
        for Record {
            name,
            revision,
            doc,
            ..
        } in page.records
        {
            match api::json::from_value::<T>(doc) {
                Ok(v) => out.push((v, revision)),
                Err(e) => tracing::warn!(kind, %name, "unreadable record: {}", e.message),
            }
        }
        match page.next_page_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}
