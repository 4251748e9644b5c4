//! A service's status from its revisions' states, as Cloud Run reports it: which revision
//! is the latest ready one, where traffic really goes (`LATEST` resolved), and the
//! `Ready`, `ConfigurationsReady` and `RoutesReady` conditions. Pure.

use std::collections::HashMap;

use api::condition::types;
use api::{Condition, ConditionState, Service, TrafficTargetAllocationType, TrafficTargetStatus};

/// What the controller knows of one revision.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RevisionState {
    pub state: ConditionState,
    /// Why it failed.
    pub message: String,
}

/// Where a service's traffic goes, and what its status says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServiceView {
    /// Full name of the latest ready revision, or empty.
    pub latest_ready: String,
    /// `(revision full name, percent)`, percents over 0, one entry per revision.
    pub split: Vec<(String, u32)>,
    /// `(tag, revision full name)`.
    pub tags: Vec<(String, String)>,
    pub traffic_statuses: Vec<TrafficTargetStatus>,
    pub configurations: Condition,
    pub routes: Condition,
    /// Nothing is pending: the operation of this generation can finish.
    pub settled: bool,
}

impl ServiceView {
    /// `Ready`: both others succeeded; failed when either failed.
    pub fn ready(&self) -> Condition {
        let (c, r) = (&self.configurations, &self.routes);
        if c.state == ConditionState::Failed {
            return Condition::new(types::READY, ConditionState::Failed).with_message(&c.message);
        }
        if r.state == ConditionState::Failed {
            return Condition::new(types::READY, ConditionState::Failed).with_message(&r.message);
        }
        if c.state == ConditionState::Succeeded && r.state == ConditionState::Succeeded {
            return Condition::new(types::READY, ConditionState::Succeeded);
        }
        Condition::new(types::READY, ConditionState::Reconciling)
    }

    /// Every revision the service needs running: traffic and tags.
    pub fn serving(&self) -> impl Iterator<Item = &str> {
        self.split
            .iter()
            .map(|(r, _)| r.as_str())
            .chain(self.tags.iter().map(|(_, r)| r.as_str()))
    }
}

/// The view of `service` given the states of its revisions (by full name).
pub(crate) fn view(
    service: &Service,
    revisions: &HashMap<String, RevisionState>,
    endpoint: &api::Endpoint,
) -> ServiceView {
    let state_of = |name: &str| revisions.get(name).map(|r| r.state);
    let (project, service_id) = project_and_id(&service.name);
    let latest_created = service.latest_created_revision.as_str();
    let latest_ready = if state_of(latest_created) == Some(ConditionState::Succeeded) {
        latest_created.to_string()
    } else if state_of(&service.latest_ready_revision) == Some(ConditionState::Succeeded) {
        service.latest_ready_revision.clone()
    } else {
        String::new()
    };

    let configurations = match revisions.get(latest_created) {
        Some(r) if r.state == ConditionState::Succeeded => {
            Condition::new(types::CONFIGURATIONS_READY, ConditionState::Succeeded)
        }
        Some(r) if r.state == ConditionState::Failed => {
            Condition::new(types::CONFIGURATIONS_READY, ConditionState::Failed).with_message(
                format!(
                    "Revision '{}' is not ready and cannot serve traffic. {}",
                    short(latest_created),
                    r.message
                ),
            )
        }
        _ => Condition::new(types::CONFIGURATIONS_READY, ConditionState::Reconciling),
    };

    let mut split: Vec<(String, u32)> = Vec::new();
    let mut tags = Vec::new();
    let mut statuses = Vec::new();
    let mut problems = Vec::new();
    let mut waiting = false;
    for t in &service.traffic {
        let full = match t.kind {
            TrafficTargetAllocationType::Latest => latest_ready.clone(),
            _ => format!("{}/revisions/{}", service.name, t.revision),
        };
        if full.is_empty() {
            // LATEST with no ready revision yet.
            waiting = true;
            continue;
        }
        // A revision that failed or is gone gets no route (its share goes to the
        // others); one still being proven gets its requests queued until it is ready.
        let routable = match state_of(&full) {
            Some(ConditionState::Succeeded) => true,
            Some(ConditionState::Failed) => {
                problems.push(format!(
                    "Revision '{}' is not ready and cannot serve traffic.",
                    short(&full)
                ));
                false
            }
            Some(_) => {
                waiting = true;
                true
            }
            None => {
                problems.push(format!("Revision '{}' does not exist.", short(&full)));
                false
            }
        };
        if t.percent > 0 && routable {
            match split.iter_mut().find(|(r, _)| *r == full) {
                Some((_, p)) => *p += t.percent as u32,
                None => split.push((full.clone(), t.percent as u32)),
            }
        }
        let mut status = TrafficTargetStatus {
            kind: t.kind,
            revision: if t.kind == TrafficTargetAllocationType::Latest {
                String::new()
            } else {
                t.revision.clone()
            },
            percent: t.percent,
            tag: t.tag.clone(),
            uri: String::new(),
        };
        if !t.tag.is_empty() {
            status.uri = endpoint.tag_uri(project, service_id, &t.tag);
            if routable {
                tags.push((t.tag.clone(), full.clone()));
            }
        }
        statuses.push(status);
    }
    let routes = if !problems.is_empty() {
        Condition::new(types::ROUTES_READY, ConditionState::Failed).with_message(problems.join(" "))
    } else if waiting {
        Condition::new(types::ROUTES_READY, ConditionState::Reconciling)
    } else {
        Condition::new(types::ROUTES_READY, ConditionState::Succeeded)
    };
    let settled = configurations.state != ConditionState::Reconciling
        && routes.state != ConditionState::Reconciling
        // A failed new revision with LATEST traffic and nothing ready before: routes
        // wait for a revision that will never come, which is settled too.
        || configurations.state == ConditionState::Failed;
    ServiceView {
        latest_ready,
        split,
        tags,
        traffic_statuses: statuses,
        configurations,
        routes,
        settled,
    }
}

/// Writes `view` into `service`'s status fields. Conditions keep their transition time
/// when their state and message did not change. Returns whether anything changed.
pub(crate) fn apply(service: &mut Service, view: &ServiceView) -> bool {
    let before = service.clone();
    service.latest_ready_revision = view.latest_ready.clone();
    service.traffic_statuses = view.traffic_statuses.clone();
    let keep_time = |new: Condition, old: Option<&Condition>| match old {
        Some(o) if o.state == new.state && o.message == new.message => o.clone(),
        _ => new,
    };
    let find = |kind: &str| before.conditions.iter().find(|c| c.kind == kind);
    service.terminal_condition = Some(keep_time(view.ready(), before.terminal_condition.as_ref()));
    service.conditions = vec![
        keep_time(
            view.configurations.clone(),
            find(types::CONFIGURATIONS_READY),
        ),
        keep_time(view.routes.clone(), find(types::ROUTES_READY)),
    ];
    service.reconciling = !view.settled;
    if view.settled {
        service.observed_generation = service.generation;
    }
    if *service == before {
        return false;
    }
    service.etag = String::new();
    service.etag = service.compute_etag();
    true
}

/// A service name's project and service id.
pub(crate) fn project_and_id(name: &str) -> (&str, &str) {
    let parts: Vec<&str> = name.split('/').collect();
    match parts[..] {
        [_, project, _, _, _, id] => (project, id),
        _ => ("", name),
    }
}

/// The last segment of a resource name.
pub(crate) fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::TrafficTarget;

    const SVC: &str = "projects/p/locations/l/services/hello";

    fn rev(id: &str) -> String {
        format!("{SVC}/revisions/{id}")
    }

    fn service(latest_created: &str, traffic: Vec<TrafficTarget>) -> Service {
        Service {
            name: SVC.into(),
            generation: 2,
            latest_created_revision: rev(latest_created),
            traffic,
            ..Default::default()
        }
    }

    fn states(list: &[(&str, ConditionState)]) -> HashMap<String, RevisionState> {
        list.iter()
            .map(|(id, s)| {
                (
                    rev(id),
                    RevisionState {
                        state: *s,
                        message: "the container exited".into(),
                    },
                )
            })
            .collect()
    }

    fn endpoint() -> api::Endpoint {
        api::Endpoint::new("p", "localhost", 8080)
    }

    #[test]
    fn latest_ready_takes_the_traffic() {
        let s = service("b", vec![TrafficTarget::latest(100)]);
        let v = view(
            &s,
            &states(&[
                ("a", ConditionState::Succeeded),
                ("b", ConditionState::Succeeded),
            ]),
            &endpoint(),
        );
        assert_eq!(v.latest_ready, rev("b"));
        assert_eq!(v.split, vec![(rev("b"), 100)]);
        assert_eq!(v.ready().state, ConditionState::Succeeded);
        assert!(v.settled);
    }

    #[test]
    fn a_pending_revision_keeps_traffic_where_it_was() {
        let mut s = service("b", vec![TrafficTarget::latest(100)]);
        s.latest_ready_revision = rev("a");
        let v = view(
            &s,
            &states(&[
                ("a", ConditionState::Succeeded),
                ("b", ConditionState::Pending),
            ]),
            &endpoint(),
        );
        assert_eq!(v.split, vec![(rev("a"), 100)]);
        assert_eq!(v.configurations.state, ConditionState::Reconciling);
        assert!(!v.settled);
    }

    #[test]
    fn a_failed_revision_fails_the_service_and_traffic_stays() {
        let mut s = service("b", vec![TrafficTarget::latest(100)]);
        s.latest_ready_revision = rev("a");
        let v = view(
            &s,
            &states(&[
                ("a", ConditionState::Succeeded),
                ("b", ConditionState::Failed),
            ]),
            &endpoint(),
        );
        assert_eq!(v.split, vec![(rev("a"), 100)]);
        assert_eq!(v.latest_ready, rev("a"));
        let ready = v.ready();
        assert_eq!(ready.state, ConditionState::Failed);
        assert!(
            ready.message.contains("Revision 'b' is not ready"),
            "{}",
            ready.message
        );
        assert!(ready.message.contains("the container exited"));
        assert!(v.settled);
    }

    #[test]
    fn the_first_revision_failing_is_settled_with_no_route() {
        let s = service("a", vec![TrafficTarget::latest(100)]);
        let v = view(&s, &states(&[("a", ConditionState::Failed)]), &endpoint());
        assert!(v.split.is_empty());
        assert!(v.settled);
        assert_eq!(v.ready().state, ConditionState::Failed);
    }

    #[test]
    fn split_and_tags() {
        let s = service(
            "b",
            vec![
                TrafficTarget::revision("a", 30),
                TrafficTarget::latest(70),
                TrafficTarget::revision("a", 0).with_tag("old"),
            ],
        );
        let v = view(
            &s,
            &states(&[
                ("a", ConditionState::Succeeded),
                ("b", ConditionState::Succeeded),
            ]),
            &endpoint(),
        );
        assert_eq!(v.split, vec![(rev("a"), 30), (rev("b"), 70)]);
        assert_eq!(v.tags, vec![("old".to_string(), rev("a"))]);
        assert_eq!(
            v.traffic_statuses[2].uri,
            "http://old---hello.localhost:8080"
        );
        assert_eq!(v.traffic_statuses[1].revision, "");
        assert_eq!(
            v.serving().collect::<Vec<_>>(),
            vec![rev("a").as_str(), rev("b").as_str(), rev("a").as_str()]
        );
    }

    #[test]
    fn a_failed_or_missing_pinned_revision_gets_no_route() {
        let s = service(
            "b",
            vec![
                TrafficTarget::revision("a", 50),
                TrafficTarget::revision("b", 50),
                TrafficTarget::revision("gone", 0).with_tag("old"),
            ],
        );
        let v = view(
            &s,
            &states(&[
                ("a", ConditionState::Succeeded),
                ("b", ConditionState::Failed),
            ]),
            &endpoint(),
        );
        assert_eq!(v.split, vec![(rev("a"), 50)]);
        assert!(v.tags.is_empty());
        assert_eq!(v.routes.state, ConditionState::Failed);
        assert!(
            v.routes.message.contains("'gone' does not exist"),
            "{}",
            v.routes.message
        );
    }

    #[test]
    fn apply_keeps_transition_times_and_reports_change() {
        let mut s = service("a", vec![TrafficTarget::latest(100)]);
        let st = states(&[("a", ConditionState::Succeeded)]);
        let v = view(&s, &st, &endpoint());
        assert!(apply(&mut s, &v));
        assert_eq!(s.latest_ready_revision, rev("a"));
        assert_eq!(s.observed_generation, 2);
        assert!(!s.reconciling);
        let again = view(&s, &st, &endpoint());
        assert!(!apply(&mut s, &again), "an unchanged view writes nothing");
    }
}
