//! Services: create, get, list, update (patch), delete, and the IAM verbs
//! (`:getIamPolicy`, `:setIamPolicy`, `:testIamPermissions`, see [`super::iam`]).
//!
//! A mutation (create, or an update that changes the desired state):
//!
//! 1. reads the request's service (its output-only fields ignored), applies the
//!    `updateMask` (none or `*`: the writable fields are replaced as a whole), fills
//!    in Cloud Run's defaults and validates it (400 with field violations named
//!    `service.template...`); traffic targets must name revisions that exist;
//! 2. bumps `generation` when a writable field changed (1 on create); when the template
//!    changed it makes a new [`Revision`] (`{service}-{generation:05}-{abc}`, or the
//!    template's `revision`) and points `latestCreatedRevision` at it;
//! 3. marks the service `reconciling`, its `Ready`, `ConfigurationsReady` and
//!    `RoutesReady` conditions `CONDITION_PENDING`, sets `uri`/`urls` and the etag;
//! 4. writes the service (precondition: absent on create, unchanged since read on
//!    update), the revision (absent) and a running [`Operation`] whose metadata is the
//!    service, in one store transaction, pokes `changed` and returns the operation.
//!    The controller finishes it with [`super::complete_operation`].
//!
//! A member needs more than `run.services.create` or `update` for some mutations (checked
//! after step 1, see [`super::auth`]): `run.services.setIamPolicy` on the service to
//! create it with `invokerIamDisabled` or to change that, and `iam.serviceAccounts.actAs`
//! on the service account (after the defaults) of every new revision.
//!
//! An update that changes nothing writes an operation that is already done (its
//! response the service as it is). `validateOnly` does every check and writes nothing:
//! the operation returned is done, its response the service as it would be, and it is
//! not stored.
//!
//! Delete (a choice until the controller finalises deletions): the service, all its
//! revisions and its IAM policy are removed in the same transaction that stores the operation, already
//! done, its response the service with `deleteTime` set. The controller sees the
//! deletions in the store's change log and tears down what ran them.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use store::{Op, Precondition, Record};

use super::auth::{require, require_act_as};
use super::iam::{caller_of, custom_method, delete_policy_op, policy_race, Target};
use super::{
    all_names, answer, blocking, check_etag, done_operation, error_response, from_doc,
    invalid_field, json_response, list_page, mask, new_operation_name, parse_body, split_verb,
    store_status, to_doc, ApiState, Params, OPERATION_KIND, REVISION_KIND, SERVICE_KIND,
};
use crate::auth::Caller;
use crate::condition::{types, Condition, ConditionState};
use crate::defaults::apply_service_defaults;
use crate::json::to_value;
use crate::names::{validate_service_id, ServiceName};
use crate::naming::{new_uid, revision_id_for_template};
use crate::operation::Operation;
use crate::revision::Revision;
use crate::service::{ListServicesResponse, Service, TrafficTargetAllocationType};
use crate::status::{BadRequest, Status};
use crate::validate::validate_service;
use crate::wkt::Timestamp;

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// How many times an update is retried when the service changed under it (the
/// controller writing status) and the client gave no etag.
const UPDATE_ATTEMPTS: usize = 5;

pub(crate) async fn create(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location)): Path<(String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let caller = caller_of(caller);
    let result = blocking(move || {
        let parent = state.location(&project, &location)?;
        let service_id = params.str("serviceId").unwrap_or("").to_string();
        if service_id.is_empty() {
            return Err(invalid_field("serviceId", "required"));
        }
        validate_service_id(&service_id).map_err(|e| invalid_field("serviceId", e.to_string()))?;
        let validate_only = params.bool("validateOnly")?;
        let request: Service = parse_body(&body, "service")?;
        let name = parent.service(service_id);
        create_service(&state, &caller, &name, request, validate_only)
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location, service)): Path<(String, String, String)>,
    query: Q,
) -> Response {
    let caller = caller_of(caller);
    answer(query, move |params| {
        let (id, verb) = split_verb(&service);
        let name = service_name(&state, &project, &location, id)?;
        if verb.is_some() {
            let target = service_target(&name);
            return custom_method(&state, &target, verb, true, &caller, &params, &[]);
        }
        Ok(to_value(&read_service(&state, &name)?.0, params.encoding()))
    })
    .await
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    Path((project, location)): Path<(String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = blocking(move || {
        let parent = state.location(&project, &location)?;
        // `showDeleted` is accepted; deleted services are not kept (see the module
        // documentation), so there is nothing more to show.
        params.bool("showDeleted")?;
        let (services, next_page_token) = list_page(
            state.store.as_ref(),
            SERVICE_KIND,
            &parent.to_string(),
            &params,
        )?;
        Ok(ListServicesResponse {
            services,
            next_page_token,
        })
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn update(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location, service)): Path<(String, String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let caller = caller_of(caller);
    let result = blocking(move || {
        let name = service_name(&state, &project, &location, &service)?;
        let validate_only = params.bool("validateOnly")?;
        let allow_missing = params.bool("allowMissing")?;
        let paths = params.list("updateMask");
        let request: Service = parse_body(&body, "service")?;
        update_service(
            &state,
            &caller,
            &name,
            request,
            &paths,
            validate_only,
            allow_missing,
        )
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path((project, location, service)): Path<(String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = blocking(move || {
        let name = service_name(&state, &project, &location, &service)?;
        let validate_only = params.bool("validateOnly")?;
        let etag = params.str("etag").unwrap_or("").to_string();
        delete_service(&state, &name, &etag, validate_only)
    })
    .await;
    json_response(result, encoding)
}

/// `POST .../services/{service}:verb`: the IAM verbs.
pub(crate) async fn post(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location, service)): Path<(String, String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let caller = caller_of(caller);
    answer(query, move |params| {
        let (id, verb) = split_verb(&service);
        let target = service_target(&service_name(&state, &project, &location, id)?);
        custom_method(&state, &target, verb, false, &caller, &params, &body)
    })
    .await
}

/// A service as the target of the IAM verbs.
fn service_target(name: &ServiceName) -> Target {
    Target::resource(
        SERVICE_KIND,
        name.to_string(),
        &name.project,
        service_not_found(name),
    )
}

/// The service a path names. A `:verb` custom method (`:getIamPolicy`...) is not
/// implemented.
fn service_name(
    state: &ApiState,
    project: &str,
    location: &str,
    service: &str,
) -> Result<ServiceName, Status> {
    let parent = state.location(project, location)?;
    if let Some((_, verb)) = service.split_once(':') {
        return Err(Status::unimplemented(format!(
            "The method :{verb} is not implemented by homerun."
        )));
    }
    validate_service_id(service).map_err(|e| invalid_field("name", e.to_string()))?;
    Ok(parent.service(service))
}

/// A service not found, in Cloud Run's words.
pub(crate) fn service_not_found(name: &ServiceName) -> Status {
    Status::not_found(format!(
        "Resource '{}' of kind 'SERVICE' in region '{}' in project '{}' does not exist.",
        name.service, name.location, name.project
    ))
}

/// The stored service and its record.
fn read_service(state: &ApiState, name: &ServiceName) -> Result<(Service, Record), Status> {
    let key = name.to_string();
    let record = state
        .store
        .get(SERVICE_KIND, &key)
        .map_err(store_status)?
        .ok_or_else(|| service_not_found(name))?;
    let service = from_doc(SERVICE_KIND, &key, record.doc.clone())?;
    Ok((service, record))
}

/// The writable fields of `from` copied into `to` (every field listed, so that a field
/// added to [`Service`] is a compile error here until it is sorted).
fn copy_writable(from: Service, to: &mut Service) {
    let Service {
        name: _,
        description,
        uid: _,
        generation: _,
        labels,
        annotations,
        create_time: _,
        update_time: _,
        delete_time: _,
        expire_time: _,
        creator: _,
        last_modifier: _,
        client,
        client_version,
        ingress,
        launch_stage,
        binary_authorization,
        template,
        traffic,
        scaling,
        invoker_iam_disabled,
        default_uri_disabled,
        urls: _,
        custom_audiences,
        observed_generation: _,
        terminal_condition: _,
        conditions: _,
        latest_ready_revision: _,
        latest_created_revision: _,
        traffic_statuses: _,
        uri: _,
        satisfies_pzs: _,
        build_config,
        reconciling: _,
        etag: _,
    } = from;
    to.description = description;
    to.labels = labels;
    to.annotations = annotations;
    to.client = client;
    to.client_version = client_version;
    to.ingress = ingress;
    to.launch_stage = launch_stage;
    to.binary_authorization = binary_authorization;
    to.template = template;
    to.traffic = traffic;
    to.scaling = scaling;
    to.invoker_iam_disabled = invoker_iam_disabled;
    to.default_uri_disabled = default_uri_disabled;
    to.custom_audiences = custom_audiences;
    to.build_config = build_config;
}

/// Only the writable fields of a service: its desired state.
fn spec_of(s: &Service) -> Service {
    let mut out = Service::default();
    copy_writable(s.clone(), &mut out);
    out
}

/// What a mutation writes.
struct Plan {
    service: Service,
    revision: Option<Revision>,
    /// Whether anything changed.
    changed: bool,
}

/// The pending conditions of a service being reconciled.
fn mark_reconciling(s: &mut Service, now: Timestamp) {
    let pending = |kind: &str| Condition {
        last_transition_time: Some(now),
        ..Condition::new(kind, ConditionState::Pending)
    };
    s.reconciling = true;
    s.terminal_condition = Some(pending(types::READY));
    s.conditions = vec![
        pending(types::CONFIGURATIONS_READY),
        pending(types::ROUTES_READY),
    ];
}

/// Builds the new state of service `name` from `current` (none on create) and the
/// desired state `desired` (its writable fields count), checks it and makes the
/// revision a template change needs.
fn plan(
    state: &ApiState,
    name: &ServiceName,
    current: Option<&Service>,
    desired: Service,
) -> Result<Plan, Status> {
    let mut desired = spec_of(&desired);
    desired.name = name.to_string();
    // Checked as sent (so that a missing template is reported as such), then again with
    // the defaults in.
    validate_service(&desired).map_err(Status::from)?;
    apply_service_defaults(&mut desired);
    validate_service(&desired).map_err(Status::from)?;

    let now = Timestamp::now();
    let mut service = match current {
        Some(c) => {
            if spec_of(c) == spec_of(&desired) {
                return Ok(Plan {
                    service: c.clone(),
                    revision: None,
                    changed: false,
                });
            }
            let mut s = c.clone();
            copy_writable(desired, &mut s);
            s.generation = c.generation + 1;
            s
        }
        None => {
            let mut s = desired;
            s.uid = new_uid();
            s.generation = 1;
            s.create_time = Some(now);
            s
        }
    };
    service.name = name.to_string();
    service.update_time = Some(now);
    service.delete_time = None;
    service.uri = state.endpoint.service_uri(&name.project, &name.service);
    service.urls = vec![service.uri.clone()];
    mark_reconciling(&mut service, now);

    let template_changed = !matches!(current, Some(c) if c.template == service.template);
    let revision = if template_changed {
        let template = service.template.clone().unwrap_or_default();
        let id = revision_id_for_template(&name.service, service.generation, &template);
        let mut r = Revision::from_service(&service, &id);
        r.uid = new_uid();
        r.create_time = Some(now);
        r.update_time = Some(now);
        r.reconciling = true;
        r.conditions = [
            types::READY,
            types::CONTAINER_HEALTHY,
            types::RESOURCES_AVAILABLE,
        ]
        .into_iter()
        .map(|kind| Condition {
            last_transition_time: Some(now),
            ..Condition::new(kind, ConditionState::Pending)
        })
        .collect();
        r.etag = r.compute_etag();
        service.latest_created_revision = r.name.clone();
        Some(r)
    } else {
        None
    };
    check_traffic_revisions(state, name, &service, revision.as_ref())?;
    service.etag = service.compute_etag();
    Ok(Plan {
        service,
        revision,
        changed: true,
    })
}

/// Every `REVISION` traffic target names a revision of the service that exists (or the
/// one being made).
fn check_traffic_revisions(
    state: &ApiState,
    name: &ServiceName,
    service: &Service,
    new_revision: Option<&Revision>,
) -> Result<(), Status> {
    let mut bad = BadRequest::default();
    for (i, t) in service.traffic.iter().enumerate() {
        if t.kind != TrafficTargetAllocationType::Revision || t.revision.is_empty() {
            continue;
        }
        if new_revision.is_some_and(|r| r.id() == t.revision) {
            continue;
        }
        let key = name.revision(t.revision.clone()).to_string();
        if state
            .store
            .get(REVISION_KIND, &key)
            .map_err(store_status)?
            .is_none()
        {
            bad.add(
                format!("service.traffic[{i}].revision"),
                format!("Revision '{}' does not exist.", t.revision),
            );
        }
    }
    bad.into_result().map_err(Status::from)
}

/// Writes a plan (service, new revision, operation) at once; `expected` is the
/// service's precondition.
fn commit(
    state: &ApiState,
    name: &ServiceName,
    plan: Plan,
    expected: Precondition,
) -> Result<Operation, store::StoreError> {
    let op_name = new_operation_name(&name.parent());
    let mut ops = Vec::with_capacity(3);
    let operation = if plan.changed {
        ops.push(Op::put(
            SERVICE_KIND,
            name.to_string(),
            to_doc(&plan.service),
            expected,
        ));
        if let Some(r) = &plan.revision {
            ops.push(Op::put(
                REVISION_KIND,
                r.name.clone(),
                to_doc(r),
                Precondition::Absent,
            ));
        }
        Operation::running(op_name.clone(), plan.service.clone())
    } else {
        ops.push(Op::check(SERVICE_KIND, name.to_string(), expected));
        done_operation(op_name.clone(), plan.service.clone())
    };
    ops.push(Op::put(
        OPERATION_KIND,
        op_name,
        to_doc(&operation),
        Precondition::Absent,
    ));
    state.store.transact(ops)?;
    state.poke();
    Ok(operation)
}

/// A store error of a service mutation, with the revision's name clash told apart.
fn commit_status(e: store::StoreError, name: &ServiceName) -> Status {
    match e {
        store::StoreError::AlreadyExists { kind, name: n, .. } if kind == REVISION_KIND => {
            Status::already_exists(format!(
                "Revision named '{}' already exists; set another template.revision.",
                n.rsplit('/').next().unwrap_or(&n)
            ))
        }
        store::StoreError::AlreadyExists { kind, .. } if kind == SERVICE_KIND => {
            Status::already_exists(format!("Resource '{}' already exists.", name.service))
        }
        store::StoreError::NotFound { kind, .. } if kind == SERVICE_KIND => service_not_found(name),
        other => store_status(other),
    }
}

/// What a mutation needs of a member beyond its route's permission (see
/// [`super::auth`]): `run.services.setIamPolicy` on the service when it changes
/// `invokerIamDisabled` (or creates the service with it), and `iam.serviceAccounts.actAs`
/// on the account of a new revision.
fn check_plan(
    state: &ApiState,
    caller: &Caller,
    name: &ServiceName,
    current: Option<&Service>,
    plan: &Plan,
) -> Result<(), Status> {
    if caller.member().is_none() || !plan.changed {
        return Ok(());
    }
    let was_public = current.is_some_and(|c| c.invoker_iam_disabled);
    if plan.service.invoker_iam_disabled != was_public {
        let key = name.to_string();
        require(
            state,
            caller,
            "run.services.setIamPolicy",
            &key,
            &[format!("projects/{}", name.project), key.clone()],
        )?;
    }
    if plan.revision.is_some() {
        let account = plan
            .service
            .template
            .as_ref()
            .map_or("", |t| t.service_account.as_str());
        require_act_as(state, caller, account, &name.project)?;
    }
    Ok(())
}

/// `CreateService`; `caller` is held to what the module documentation says a member
/// needs.
pub fn create_service(
    state: &ApiState,
    caller: &Caller,
    name: &ServiceName,
    request: Service,
    validate_only: bool,
) -> Result<Operation, Status> {
    let plan = plan(state, name, None, request)?;
    check_plan(state, caller, name, None, &plan)?;
    if validate_only {
        let existing = state
            .store
            .get(SERVICE_KIND, &name.to_string())
            .map_err(store_status)?;
        if existing.is_some() {
            return Err(commit_status(
                store::StoreError::AlreadyExists {
                    kind: SERVICE_KIND.into(),
                    name: name.to_string(),
                    current: 0,
                },
                name,
            ));
        }
        return Ok(done_operation(
            new_operation_name(&name.parent()),
            plan.service,
        ));
    }
    commit(state, name, plan, Precondition::Absent).map_err(|e| commit_status(e, name))
}

/// `UpdateService` (`paths`: the `updateMask`); `caller` is held to what the
/// module documentation says a member needs.
pub fn update_service(
    state: &ApiState,
    caller: &Caller,
    name: &ServiceName,
    request: Service,
    paths: &[String],
    validate_only: bool,
    allow_missing: bool,
) -> Result<Operation, Status> {
    for attempt in 1..=UPDATE_ATTEMPTS {
        let key = name.to_string();
        let record = state.store.get(SERVICE_KIND, &key).map_err(store_status)?;
        let Some(record) = record else {
            if allow_missing {
                return create_service(state, caller, name, request, validate_only);
            }
            return Err(service_not_found(name));
        };
        let current: Service = from_doc(SERVICE_KIND, &key, record.doc.clone())?;
        check_etag(&request.etag, &current.etag, &key)?;
        let desired = if mask::is_full(paths) {
            request.clone()
        } else {
            mask::apply(&current, &request, paths)?
        };
        let plan = plan(state, name, Some(&current), desired)?;
        check_plan(state, caller, name, Some(&current), &plan)?;
        if validate_only {
            return Ok(done_operation(
                new_operation_name(&name.parent()),
                plan.service,
            ));
        }
        match commit(state, name, plan, Precondition::Revision(record.revision)) {
            Ok(op) => return Ok(op),
            Err(e) if e.is_conflict() && attempt < UPDATE_ATTEMPTS => continue,
            Err(e) => return Err(commit_status(e, name)),
        }
    }
    unreachable!("the last attempt returns")
}

/// `DeleteService`: see the module documentation.
pub fn delete_service(
    state: &ApiState,
    name: &ServiceName,
    etag: &str,
    validate_only: bool,
) -> Result<Operation, Status> {
    let key = name.to_string();
    let (mut service, record) = read_service(state, name)?;
    check_etag(etag, &service.etag, &key)?;
    let now = Timestamp::now();
    service.delete_time = Some(now);
    service.update_time = Some(now);
    service.reconciling = false;
    let op_name = new_operation_name(&name.parent());
    let operation = done_operation(op_name.clone(), service);
    if validate_only {
        return Ok(operation);
    }
    let mut ops = vec![Op::delete(
        SERVICE_KIND,
        key.clone(),
        Precondition::Revision(record.revision),
    )];
    ops.extend(
        all_names(state.store.as_ref(), REVISION_KIND, &key)?
            .into_iter()
            .map(|n| Op::delete(REVISION_KIND, n, Precondition::Exists)),
    );
    ops.push(delete_policy_op(state, &key)?);
    ops.push(Op::put(
        OPERATION_KIND,
        op_name,
        to_doc(&operation),
        Precondition::Absent,
    ));
    state
        .store
        .transact(ops)
        .map_err(|e| policy_race(&e, &key).unwrap_or_else(|| commit_status(e, name)))?;
    state.poke();
    Ok(operation)
}
