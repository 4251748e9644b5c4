//! Resource names: `projects/{project}/locations/{location}` and what lives below.

use std::fmt;
use std::str::FromStr;

/// A malformed resource name or id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not of the expected shape.
    #[error("\"{name}\" is not a {kind} name ({pattern})")]
    Pattern {
        name: String,
        kind: &'static str,
        pattern: &'static str,
    },
    /// A segment breaks its rules.
    #[error("{0}")]
    Segment(String),
}

const LOCATION_PATTERN: &str = "projects/{project}/locations/{location}";
const SERVICE_PATTERN: &str = "projects/{project}/locations/{location}/services/{service}";
const REVISION_PATTERN: &str =
    "projects/{project}/locations/{location}/services/{service}/revisions/{revision}";
const OPERATION_PATTERN: &str = "projects/{project}/locations/{location}/operations/{operation}";
const JOB_PATTERN: &str = "projects/{project}/locations/{location}/jobs/{job}";
const EXECUTION_PATTERN: &str =
    "projects/{project}/locations/{location}/jobs/{job}/executions/{execution}";
const TASK_PATTERN: &str =
    "projects/{project}/locations/{location}/jobs/{job}/executions/{execution}/tasks/{task}";

/// The longest job id (Cloud Run's limit: "cannot be longer than 63 characters").
pub const MAX_JOB_ID_LEN: usize = 63;
/// The longest execution or task id homerun takes in a name (generated ones are
/// `{job}-{5}` and `{execution}-{index}`, so at most 69 and 75 characters).
pub const MAX_EXECUTION_ID_LEN: usize = 128;

/// The longest service id: 49 characters, so that `{service}-00001-abc` (the longest
/// generated revision id for five-digit generations) fits a 63-character DNS label.
pub const MAX_SERVICE_ID_LEN: usize = 49;

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A service id as Cloud Run takes it: lowercase letters, digits and hyphens, starting
/// with a letter, not ending with a hyphen, at most 49 characters.
pub fn validate_service_id(id: &str) -> Result<(), NameError> {
    let err = |why: &str| {
        Err(NameError::Segment(format!(
            "Invalid service id \"{id}\": {why}"
        )))
    };
    if id.is_empty() {
        return err("it must not be empty");
    }
    if id.len() > MAX_SERVICE_ID_LEN {
        return err("it must contain fewer than 50 characters");
    }
    if !id.as_bytes()[0].is_ascii_lowercase() {
        return err("it must begin with a lowercase letter");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return err("only lowercase letters, digits and hyphens are allowed");
    }
    if id.ends_with('-') {
        return err("it must not end with a hyphen");
    }
    Ok(())
}

/// A job id as Cloud Run takes it: lowercase letters, digits and hyphens, starting with
/// a letter, not ending with a hyphen, at most 63 characters.
pub fn validate_job_id(id: &str) -> Result<(), NameError> {
    let err = |why: &str| {
        Err(NameError::Segment(format!(
            "Invalid job id \"{id}\": {why}"
        )))
    };
    if id.is_empty() {
        return err("it must not be empty");
    }
    if id.len() > MAX_JOB_ID_LEN {
        return err("it must not be longer than 63 characters");
    }
    if !id.as_bytes()[0].is_ascii_lowercase() {
        return err("it must begin with a lowercase letter");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return err("only lowercase letters, digits and hyphens are allowed");
    }
    if id.ends_with('-') {
        return err("it must not end with a hyphen");
    }
    Ok(())
}

/// An execution id (`hello-x7k2p`): lowercase letters, digits and hyphens, starting
/// with a letter, not ending with a hyphen, at most 128 characters.
pub fn validate_execution_id(id: &str) -> Result<(), NameError> {
    validate_child_id(id, "execution")
}

/// A task id (`hello-x7k2p-0`): as an execution id.
pub fn validate_task_id(id: &str) -> Result<(), NameError> {
    validate_child_id(id, "task")
}

fn validate_child_id(id: &str, what: &str) -> Result<(), NameError> {
    if is_dns_label(id, MAX_EXECUTION_ID_LEN) && id.as_bytes()[0].is_ascii_lowercase() {
        Ok(())
    } else {
        Err(NameError::Segment(format!(
            "Invalid {what} id \"{id}\": lowercase letters, digits and hyphens, starting with a \
             letter, not ending with a hyphen, at most {MAX_EXECUTION_ID_LEN} characters"
        )))
    }
}

/// A project id or number as a name segment. homerun takes any project as a namespace
/// but puts it in host names, so it must be a DNS label: lowercase letters, digits and
/// hyphens, at most 63 characters.
pub fn validate_project_id(project: &str) -> Result<(), NameError> {
    if is_dns_label(project, 63) {
        Ok(())
    } else {
        Err(NameError::Segment(format!(
            "Invalid project \"{project}\": only lowercase letters, digits and hyphens (at most 63, \
             not starting or ending with a hyphen)"
        )))
    }
}

/// A location id (a region, like `us-central1`): a DNS label.
pub fn validate_location_id(location: &str) -> Result<(), NameError> {
    if is_dns_label(location, 63) {
        Ok(())
    } else {
        Err(NameError::Segment(format!(
            "Invalid location \"{location}\""
        )))
    }
}

/// A revision id: a DNS label of at most 63 characters starting with a letter.
pub fn validate_revision_id(revision: &str) -> Result<(), NameError> {
    if is_dns_label(revision, 63) && revision.as_bytes()[0].is_ascii_lowercase() {
        Ok(())
    } else {
        Err(NameError::Segment(format!(
            "Invalid revision name \"{revision}\": lowercase letters, digits and hyphens, starting \
             with a letter, not ending with a hyphen, at most 63 characters"
        )))
    }
}

/// An operation id: letters, digits, `-` and `_`.
fn validate_operation_id(id: &str) -> Result<(), NameError> {
    if !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(NameError::Segment(format!("Invalid operation id \"{id}\"")))
    }
}

/// Splits `name` into the values of `pattern`'s `{...}` segments.
fn split<'a, const N: usize>(
    name: &'a str,
    kind: &'static str,
    pattern: &'static str,
) -> Result<[&'a str; N], NameError> {
    let err = || NameError::Pattern {
        name: name.to_string(),
        kind,
        pattern,
    };
    let parts: Vec<&str> = name.split('/').collect();
    let expected: Vec<&str> = pattern.split('/').collect();
    if parts.len() != expected.len() {
        return Err(err());
    }
    let mut out = [""; N];
    let mut i = 0;
    for (part, want) in parts.iter().zip(&expected) {
        if want.starts_with('{') {
            if part.is_empty() {
                return Err(err());
            }
            out[i] = part;
            i += 1;
        } else if part != want {
            return Err(err());
        }
    }
    Ok(out)
}

/// `projects/{project}/locations/{location}`: the parent of services and operations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocationName {
    pub project: String,
    pub location: String,
}

impl LocationName {
    pub fn new(project: impl Into<String>, location: impl Into<String>) -> Self {
        LocationName {
            project: project.into(),
            location: location.into(),
        }
    }

    /// The service `service_id` in this location.
    pub fn service(&self, service_id: impl Into<String>) -> ServiceName {
        ServiceName {
            project: self.project.clone(),
            location: self.location.clone(),
            service: service_id.into(),
        }
    }

    /// The job `job_id` in this location.
    pub fn job(&self, job_id: impl Into<String>) -> JobName {
        JobName::new(self.project.clone(), self.location.clone(), job_id)
    }

    /// The operation `id` in this location.
    pub fn operation(&self, id: impl Into<String>) -> OperationName {
        OperationName {
            project: self.project.clone(),
            location: self.location.clone(),
            operation: id.into(),
        }
    }
}

impl FromStr for LocationName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let [project, location] = split(s, "location", LOCATION_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        Ok(LocationName::new(project, location))
    }
}

impl fmt::Display for LocationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/locations/{}", self.project, self.location)
    }
}

/// `projects/{project}/locations/{location}/services/{service}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName {
    pub project: String,
    pub location: String,
    pub service: String,
}

impl ServiceName {
    /// The wildcard service of `ListRevisions`' parent: every service.
    pub const ANY: &'static str = "-";

    pub fn new(
        project: impl Into<String>,
        location: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        ServiceName {
            project: project.into(),
            location: location.into(),
            service: service.into(),
        }
    }

    /// The parent location.
    pub fn parent(&self) -> LocationName {
        LocationName::new(self.project.clone(), self.location.clone())
    }

    /// Whether this is the `-` wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.service == Self::ANY
    }

    /// The revision `revision_id` of this service.
    pub fn revision(&self, revision_id: impl Into<String>) -> RevisionName {
        RevisionName {
            project: self.project.clone(),
            location: self.location.clone(),
            service: self.service.clone(),
            revision: revision_id.into(),
        }
    }

    /// Parses the parent of `ListRevisions`, where the service may be `-` (every
    /// service of the location).
    pub fn parse_allowing_wildcard(s: &str) -> Result<Self, NameError> {
        let [project, location, service] = split(s, "service", SERVICE_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        if service != Self::ANY {
            validate_service_id(service)?;
        }
        Ok(ServiceName::new(project, location, service))
    }
}

impl FromStr for ServiceName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let [project, location, service] = split(s, "service", SERVICE_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        validate_service_id(service)?;
        Ok(ServiceName::new(project, location, service))
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/services/{}", self.parent(), self.service)
    }
}

/// `projects/{project}/locations/{location}/services/{service}/revisions/{revision}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevisionName {
    pub project: String,
    pub location: String,
    pub service: String,
    pub revision: String,
}

impl RevisionName {
    /// The parent service.
    pub fn parent(&self) -> ServiceName {
        ServiceName::new(
            self.project.clone(),
            self.location.clone(),
            self.service.clone(),
        )
    }
}

impl FromStr for RevisionName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let [project, location, service, revision] = split(s, "revision", REVISION_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        validate_service_id(service)?;
        validate_revision_id(revision)?;
        Ok(RevisionName {
            project: project.into(),
            location: location.into(),
            service: service.into(),
            revision: revision.into(),
        })
    }
}

impl fmt::Display for RevisionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/revisions/{}", self.parent(), self.revision)
    }
}

/// `projects/{project}/locations/{location}/operations/{operation}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationName {
    pub project: String,
    pub location: String,
    pub operation: String,
}

impl OperationName {
    /// The parent location.
    pub fn parent(&self) -> LocationName {
        LocationName::new(self.project.clone(), self.location.clone())
    }
}

impl FromStr for OperationName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let [project, location, operation] = split(s, "operation", OPERATION_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        validate_operation_id(operation)?;
        Ok(OperationName {
            project: project.into(),
            location: location.into(),
            operation: operation.into(),
        })
    }
}

impl fmt::Display for OperationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/operations/{}", self.parent(), self.operation)
    }
}

/// `projects/{project}/locations/{location}/jobs/{job}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobName {
    pub project: String,
    pub location: String,
    pub job: String,
}

impl JobName {
    /// The wildcard job of `ListExecutions`' (and `ListTasks`') parent: every job.
    pub const ANY: &'static str = "-";

    pub fn new(
        project: impl Into<String>,
        location: impl Into<String>,
        job: impl Into<String>,
    ) -> Self {
        JobName {
            project: project.into(),
            location: location.into(),
            job: job.into(),
        }
    }

    /// The parent location.
    pub fn parent(&self) -> LocationName {
        LocationName::new(self.project.clone(), self.location.clone())
    }

    /// Whether this is the `-` wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.job == Self::ANY
    }

    /// The execution `execution_id` of this job.
    pub fn execution(&self, execution_id: impl Into<String>) -> ExecutionName {
        ExecutionName {
            project: self.project.clone(),
            location: self.location.clone(),
            job: self.job.clone(),
            execution: execution_id.into(),
        }
    }

    /// Parses the parent of `ListExecutions`, where the job may be `-` (every job of
    /// the location).
    pub fn parse_allowing_wildcard(s: &str) -> Result<Self, NameError> {
        let [project, location, job] = split(s, "job", JOB_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        if job != Self::ANY {
            validate_job_id(job)?;
        }
        Ok(JobName::new(project, location, job))
    }
}

impl FromStr for JobName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let [project, location, job] = split(s, "job", JOB_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        validate_job_id(job)?;
        Ok(JobName::new(project, location, job))
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/jobs/{}", self.parent(), self.job)
    }
}

/// `projects/{project}/locations/{location}/jobs/{job}/executions/{execution}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutionName {
    pub project: String,
    pub location: String,
    pub job: String,
    pub execution: String,
}

impl ExecutionName {
    /// The wildcard execution of `ListTasks`' parent: every execution of the job.
    pub const ANY: &'static str = "-";

    /// The parent job.
    pub fn parent(&self) -> JobName {
        JobName::new(
            self.project.clone(),
            self.location.clone(),
            self.job.clone(),
        )
    }

    /// The task `task_id` of this execution.
    pub fn task(&self, task_id: impl Into<String>) -> TaskName {
        TaskName {
            project: self.project.clone(),
            location: self.location.clone(),
            job: self.job.clone(),
            execution: self.execution.clone(),
            task: task_id.into(),
        }
    }
}

impl FromStr for ExecutionName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let [project, location, job, execution] = split(s, "execution", EXECUTION_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        validate_job_id(job)?;
        validate_execution_id(execution)?;
        Ok(JobName::new(project, location, job).execution(execution))
    }
}

impl fmt::Display for ExecutionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/executions/{}", self.parent(), self.execution)
    }
}

/// `projects/{project}/locations/{location}/jobs/{job}/executions/{execution}/tasks/{task}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskName {
    pub project: String,
    pub location: String,
    pub job: String,
    pub execution: String,
    pub task: String,
}

impl TaskName {
    /// The parent execution.
    pub fn parent(&self) -> ExecutionName {
        JobName::new(
            self.project.clone(),
            self.location.clone(),
            self.job.clone(),
        )
        .execution(self.execution.clone())
    }
}

impl FromStr for TaskName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let [project, location, job, execution, task] = split(s, "task", TASK_PATTERN)?;
        validate_project_id(project)?;
        validate_location_id(location)?;
        validate_job_id(job)?;
        validate_execution_id(execution)?;
        validate_task_id(task)?;
        Ok(JobName::new(project, location, job)
            .execution(execution)
            .task(task))
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/tasks/{}", self.parent(), self.task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids() {
        for ok in ["a", "hello", "hello-world-2", &"a".repeat(49)] {
            validate_service_id(ok).unwrap();
        }
        for bad in [
            "",
            "1abc",
            "-abc",
            "abc-",
            "Hello",
            "hel_lo",
            "héllo",
            &"a".repeat(50),
        ] {
            assert!(validate_service_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        let n: ServiceName = "projects/p1/locations/local/services/hello"
            .parse()
            .unwrap();
        assert_eq!(n, ServiceName::new("p1", "local", "hello"));
        assert_eq!(n.to_string(), "projects/p1/locations/local/services/hello");
        assert_eq!(n.parent().to_string(), "projects/p1/locations/local");
        let r: RevisionName =
            "projects/p1/locations/local/services/hello/revisions/hello-00001-abc"
                .parse()
                .unwrap();
        assert_eq!(r.parent(), n);
        assert_eq!(r.revision, "hello-00001-abc");
        assert_eq!(n.revision("hello-00001-abc"), r);
        let o: OperationName = "projects/p1/locations/local/operations/0a1b-c_d"
            .parse()
            .unwrap();
        assert_eq!(
            o.to_string(),
            "projects/p1/locations/local/operations/0a1b-c_d"
        );
        let l: LocationName = "projects/123456/locations/us-central1".parse().unwrap();
        assert_eq!(
            l.service("x").to_string(),
            "projects/123456/locations/us-central1/services/x"
        );
    }

    #[test]
    fn job_names_round_trip() {
        let t: TaskName =
            "projects/p1/locations/local/jobs/batch/executions/batch-x7k2p/tasks/batch-x7k2p-3"
                .parse()
                .unwrap();
        assert_eq!(t.task, "batch-x7k2p-3");
        assert_eq!(
            t.parent().to_string(),
            "projects/p1/locations/local/jobs/batch/executions/batch-x7k2p"
        );
        assert_eq!(t.parent().parent(), JobName::new("p1", "local", "batch"));
        assert_eq!(
            t.to_string(),
            "projects/p1/locations/local/jobs/batch/executions/batch-x7k2p/tasks/batch-x7k2p-3"
        );
        let e: ExecutionName = t.parent().to_string().parse().unwrap();
        assert_eq!(e.task("batch-x7k2p-3"), t);
        let j = LocationName::new("p1", "local").job("batch");
        assert_eq!(j.to_string(), "projects/p1/locations/local/jobs/batch");
        assert_eq!(j.to_string().parse::<JobName>().unwrap(), j);
        validate_job_id(&"a".repeat(63)).unwrap();
        assert!(validate_job_id(&"a".repeat(64)).is_err());
        for bad in [
            "projects/p/locations/l/jobs/-",
            "projects/p/locations/l/jobs/Batch",
            "projects/p/locations/l/jobs/1batch",
            "projects/p/locations/l/services/batch",
        ] {
            assert!(bad.parse::<JobName>().is_err(), "{bad}");
        }
        assert!(
            JobName::parse_allowing_wildcard("projects/p/locations/l/jobs/-")
                .unwrap()
                .is_wildcard()
        );
        assert!("projects/p/locations/l/jobs/a/executions/B"
            .parse::<ExecutionName>()
            .is_err());
    }

    #[test]
    fn bad_names() {
        for bad in [
            "",
            "projects/p/locations/l/services",
            "projects/p/locations/l/services/",
            "projects/p/locations/l/services/-",
            "projects/p/locations/l/services/Hello",
            "projects/p/locations/l/services/a/b",
            "project/p/locations/l/services/a",
            "projects/P_x/locations/l/services/a",
            "projects//locations/l/services/a",
        ] {
            assert!(bad.parse::<ServiceName>().is_err(), "{bad}");
        }
        let any =
            ServiceName::parse_allowing_wildcard("projects/p/locations/l/services/-").unwrap();
        assert!(any.is_wildcard());
    }
}
