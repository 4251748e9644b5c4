//! Revisions: get, list (`-` as the service lists every service's), delete.
//!
//! Revisions are made by service mutations only. Deleting one is refused
//! (`FAILED_PRECONDITION`) while it serves traffic: named by a traffic target with a
//! percent or a tag, reached through a `LATEST` target (the latest ready revision, or
//! the latest created one while none is ready), or listed in the service's
//! `trafficStatuses`; the service's latest created revision is kept too. A deletion
//! removes the record at once (checking in the same transaction that the service did
//! not change meanwhile) and returns an operation already done, its response the
//! revision with `deleteTime` set.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use store::{Op, Precondition};

use super::{
    blocking, check_etag, error_response, from_doc, invalid_field, json_response, list_page,
    services::service_not_found, store_status, to_doc, ApiState, Params, OPERATION_KIND,
    REVISION_KIND, SERVICE_KIND,
};
use crate::names::{validate_revision_id, validate_service_id, RevisionName, ServiceName};
use crate::naming::new_operation_id;
use crate::operation::Operation;
use crate::revision::{ListRevisionsResponse, Revision};
use crate::service::{Service, TrafficTargetAllocationType};
use crate::status::Status;
use crate::wkt::Timestamp;

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(crate) async fn get(
    State(state): State<ApiState>,
    Path((project, location, service, revision)): Path<(String, String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let result = blocking(move || {
        let name = revision_name(&state, &project, &location, &service, &revision)?;
        Ok(read_revision(&state, &name)?.0)
    })
    .await;
    json_response(result, params.encoding())
}

pub(crate) async fn list(
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
        let loc = state.location(&project, &location)?;
        params.bool("showDeleted")?;
        let parent = if service == ServiceName::ANY {
            loc.to_string()
        } else {
            validate_service_id(&service).map_err(|e| invalid_field("parent", e.to_string()))?;
            loc.service(service).to_string()
        };
        let (revisions, next_page_token) =
            list_page(state.store.as_ref(), REVISION_KIND, &parent, &params)?;
        Ok(ListRevisionsResponse {
            revisions,
            next_page_token,
        })
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path((project, location, service, revision)): Path<(String, String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = blocking(move || {
        let name = revision_name(&state, &project, &location, &service, &revision)?;
        let validate_only = params.bool("validateOnly")?;
        let etag = params.str("etag").unwrap_or("").to_string();
        delete_revision(&state, &name, &etag, validate_only)
    })
    .await;
    json_response(result, encoding)
}

fn revision_name(
    state: &ApiState,
    project: &str,
    location: &str,
    service: &str,
    revision: &str,
) -> Result<RevisionName, Status> {
    let loc = state.location(project, location)?;
    validate_service_id(service).map_err(|e| invalid_field("name", e.to_string()))?;
    validate_revision_id(revision).map_err(|e| invalid_field("name", e.to_string()))?;
    Ok(loc.service(service).revision(revision))
}

fn revision_not_found(name: &RevisionName) -> Status {
    Status::not_found(format!(
        "Resource '{}' of kind 'REVISION' in region '{}' in project '{}' does not exist.",
        name.revision, name.location, name.project
    ))
}

fn read_revision(state: &ApiState, name: &RevisionName) -> Result<(Revision, u64), Status> {
    let key = name.to_string();
    let record = state
        .store
        .get(REVISION_KIND, &key)
        .map_err(store_status)?
        .ok_or_else(|| revision_not_found(name))?;
    Ok((from_doc(REVISION_KIND, &key, record.doc)?, record.revision))
}

/// Why a revision may not be deleted while `service` is as it is, if it may not.
pub fn serving_reason(service: &Service, revision_id: &str) -> Option<String> {
    let full = format!("{}/revisions/{revision_id}", service.name);
    let latest = if service.latest_ready_revision.is_empty() {
        &service.latest_created_revision
    } else {
        &service.latest_ready_revision
    };
    for t in &service.traffic {
        let serves = t.percent > 0 || !t.tag.is_empty();
        let names_it = match t.kind {
            TrafficTargetAllocationType::Revision => t.revision == revision_id,
            _ => t.revision.is_empty() && *latest == full,
        };
        if serves && names_it {
            return Some(format!(
                "Revision '{revision_id}' is serving traffic (a traffic target of the service)."
            ));
        }
    }
    if service
        .traffic_statuses
        .iter()
        .any(|t| t.revision == revision_id && (t.percent > 0 || !t.tag.is_empty()))
    {
        return Some(format!("Revision '{revision_id}' is serving traffic."));
    }
    if service.latest_created_revision == full {
        return Some(format!(
            "Revision '{revision_id}' is the latest revision of its service."
        ));
    }
    None
}

/// `DeleteRevision`: see the module documentation.
pub fn delete_revision(
    state: &ApiState,
    name: &RevisionName,
    etag: &str,
    validate_only: bool,
) -> Result<Operation, Status> {
    let key = name.to_string();
    let (mut revision, rev) = read_revision(state, name)?;
    check_etag(etag, &revision.etag, &key)?;
    let service_key = name.parent().to_string();
    let service_record = state
        .store
        .get(SERVICE_KIND, &service_key)
        .map_err(store_status)?;
    let mut ops = vec![Op::delete(
        REVISION_KIND,
        key.clone(),
        Precondition::Revision(rev),
    )];
    if let Some(record) = service_record {
        let service: Service = from_doc(SERVICE_KIND, &service_key, record.doc)?;
        if let Some(why) = serving_reason(&service, &name.revision) {
            return Err(Status::failed_precondition(why));
        }
        ops.push(Op::check(
            SERVICE_KIND,
            service_key,
            Precondition::Revision(record.revision),
        ));
    }
    let now = Timestamp::now();
    revision.delete_time = Some(now);
    revision.update_time = Some(now);
    let op_name = name
        .parent()
        .parent()
        .operation(new_operation_id())
        .to_string();
    let mut operation = Operation::running(op_name.clone(), revision.clone());
    operation.succeed(revision);
    if validate_only {
        return Ok(operation);
    }
    ops.push(Op::put(
        OPERATION_KIND,
        op_name,
        to_doc(&operation),
        Precondition::Absent,
    ));
    state.store.transact(ops).map_err(|e| match e {
        store::StoreError::Conflict { .. } => Status::aborted(format!(
            "The service '{}' changed while revision '{}' was being deleted; retry.",
            name.service, name.revision
        )),
        store::StoreError::NotFound { kind, .. } if kind == REVISION_KIND => {
            revision_not_found(name)
        }
        store::StoreError::NotFound { .. } => service_not_found(&name.parent()),
        other => store_status(other),
    })?;
    state.poke();
    Ok(operation)
}
