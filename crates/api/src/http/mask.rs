//! `updateMask` on a service or a job: which fields of the request replace the stored
//! ones.
//!
//! Paths are proto field paths in camelCase or snake_case (`template`,
//! `template.containers`, `template.scaling.max_instance_count`, `labels`); `*` is the
//! whole writable state. A path's first field must be writable (not output only). A
//! field the mask names but the request leaves out is cleared. Paths cannot index
//! into lists (as `FieldMask` defines them): `template.containers` replaces them all.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::invalid_field;
use crate::json::{self, EnumEncoding};
use crate::service::Service;
use crate::status::Status;

/// The writable fields of a service, as JSON names.
pub(crate) const WRITABLE: &[&str] = &[
    "description",
    "labels",
    "annotations",
    "client",
    "clientVersion",
    "ingress",
    "launchStage",
    "binaryAuthorization",
    "template",
    "traffic",
    "scaling",
    "invokerIamDisabled",
    "defaultUriDisabled",
    "customAudiences",
    "buildConfig",
];

/// The writable fields of a job, as JSON names.
pub(crate) const JOB_WRITABLE: &[&str] = &[
    "labels",
    "annotations",
    "client",
    "clientVersion",
    "launchStage",
    "binaryAuthorization",
    "template",
    "startExecutionToken",
    "runExecutionToken",
];

/// Map fields, whose keys are taken as they are.
const MAPS: &[&str] = &["labels", "annotations", "limits", "selector"];

fn camel(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A mask path as JSON member names.
fn segments(path: &str, writable: &[&str]) -> Result<Vec<String>, Status> {
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('.') {
        if raw.is_empty() {
            return Err(invalid_field(
                "updateMask",
                format!("Invalid field path \"{path}\""),
            ));
        }
        let in_map = out.last().is_some_and(|prev| MAPS.contains(&prev.as_str()));
        out.push(if in_map { raw.to_string() } else { camel(raw) });
    }
    if !writable.contains(&out[0].as_str()) {
        return Err(invalid_field(
            "updateMask",
            format!("The field \"{path}\" cannot be updated (unknown or output only)"),
        ));
    }
    Ok(out)
}

/// Whether the mask is absent or `*`: a full replacement of the writable fields.
pub(crate) fn is_full(paths: &[String]) -> bool {
    paths.is_empty() || paths.iter().any(|p| p == "*")
}

/// `current` with the fields `paths` names taken from `request`.
pub(crate) fn apply(
    current: &Service,
    request: &Service,
    paths: &[String],
) -> Result<Service, Status> {
    apply_fields(current, request, paths, WRITABLE, "service")
}

/// [`apply`] for any message whose writable fields are `writable`; parse errors are
/// named under `root`.
pub(crate) fn apply_fields<T: Serialize + DeserializeOwned>(
    current: &T,
    request: &T,
    paths: &[String],
    writable: &[&str],
    root: &str,
) -> Result<T, Status> {
    let mut target = json::to_value(current, EnumEncoding::Name);
    let source = json::to_value(request, EnumEncoding::Name);
    for path in paths {
        let segs = segments(path, writable)?;
        let value = lookup(&source, &segs).cloned();
        set(&mut target, &segs, value).map_err(|why| {
            invalid_field("updateMask", format!("Cannot apply \"{path}\": {why}"))
        })?;
    }
    json::from_value(target).map_err(|mut status| {
        for d in &mut status.details {
            if let crate::wkt::Any::BadRequest(b) = d {
                for v in &mut b.field_violations {
                    v.field = format!("{root}.{}", v.field);
                }
            }
        }
        status
    })
}

fn lookup<'a>(value: &'a Value, segs: &[String]) -> Option<&'a Value> {
    segs.iter()
        .try_fold(value, |v, s| v.as_object().and_then(|m| m.get(s)))
}

fn set(target: &mut Value, segs: &[String], value: Option<Value>) -> Result<(), String> {
    let (last, parents) = segs.split_last().expect("a path has a segment");
    let mut cur = target;
    for s in parents {
        let map = cur
            .as_object_mut()
            .ok_or_else(|| format!("\"{s}\" is not inside a message"))?;
        if value.is_none() && !map.contains_key(s) {
            return Ok(());
        }
        cur = map
            .entry(s.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let map = cur
        .as_object_mut()
        .ok_or_else(|| format!("\"{last}\" is not inside a message"))?;
    match value {
        Some(v) => {
            map.insert(last.clone(), v);
        }
        None => {
            map.remove(last);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: Value) -> Service {
        json::from_value(v).unwrap()
    }

    #[test]
    fn paths_replace_and_clear() {
        let current = svc(json!({
            "name": "projects/p/locations/l/services/s",
            "description": "old",
            "labels": {"a": "1"},
            "template": {"timeout": "10s", "containers": [{"image": "old"}]},
            "uri": "http://s.localhost:8080",
        }));
        let request = svc(json!({
            "description": "new",
            "template": {"containers": [{"image": "new"}], "scaling": {"maxInstanceCount": 3}},
        }));
        let out = apply(
            &current,
            &request,
            &[
                "template.containers".into(),
                "labels".into(),
                "template.scaling.max_instance_count".into(),
            ],
        )
        .unwrap();
        assert_eq!(out.description, "old");
        assert!(out.labels.is_empty());
        let t = out.template.unwrap();
        assert_eq!(t.containers[0].image, "new");
        assert_eq!(t.timeout.unwrap().seconds, 10);
        assert_eq!(t.scaling.unwrap().max_instance_count, 3);
        assert_eq!(out.uri, "http://s.localhost:8080");
    }

    #[test]
    fn output_only_paths_are_refused() {
        let s = Service::default();
        for bad in [
            "uri",
            "etag",
            "latest_created_revision",
            "template..x",
            "nope",
        ] {
            let err = apply(&s, &s, &[bad.into()]).unwrap_err();
            assert_eq!(err.http_status(), 400, "{bad}");
            assert_eq!(
                err.bad_request().unwrap().field_violations[0].field,
                "updateMask"
            );
        }
    }
}
