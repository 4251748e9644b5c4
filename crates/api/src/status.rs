//! Errors: `google.rpc.Status`, its codes and the `BadRequest` / `ErrorInfo` details.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::json::{is_default, EnumEncoding};
use crate::wkt::Any;

/// `google.rpc.Code`, with the HTTP status each maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The code of a number; unknown numbers are `UNKNOWN`.
    pub fn from_i32(n: i32) -> Code {
        use Code::*;
        match n {
            0 => Ok,
            1 => Cancelled,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }

    /// The name (`"INVALID_ARGUMENT"`), the `status` member of an HTTP error body.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            Ok => "OK",
            Cancelled => "CANCELLED",
            Unknown => "UNKNOWN",
            InvalidArgument => "INVALID_ARGUMENT",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            PermissionDenied => "PERMISSION_DENIED",
            ResourceExhausted => "RESOURCE_EXHAUSTED",
            FailedPrecondition => "FAILED_PRECONDITION",
            Aborted => "ABORTED",
            OutOfRange => "OUT_OF_RANGE",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
            Unavailable => "UNAVAILABLE",
            DataLoss => "DATA_LOSS",
            Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The HTTP status of the code (google/rpc/code.proto's mapping).
    pub fn http_status(self) -> u16 {
        use Code::*;
        match self {
            Ok => 200,
            Cancelled => 499,
            Unknown | Internal | DataLoss => 500,
            InvalidArgument | FailedPrecondition | OutOfRange => 400,
            DeadlineExceeded => 504,
            NotFound => 404,
            AlreadyExists | Aborted => 409,
            PermissionDenied => 403,
            ResourceExhausted => 429,
            Unimplemented => 501,
            Unavailable => 503,
            Unauthenticated => 401,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `google.rpc.Status`: an error as an operation carries it (`code` is the rpc code,
/// a number). Over HTTP it travels inside [`Status::to_http_body`]'s envelope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub code: i32,
    #[serde(skip_serializing_if = "is_default")]
    pub message: String,
    #[serde(skip_serializing_if = "is_default")]
    pub details: Vec<Any>,
}

impl Status {
    /// A status of `code` with a message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code: code as i32,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// `INVALID_ARGUMENT` (HTTP 400).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// `NOT_FOUND` (HTTP 404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// `ALREADY_EXISTS` (HTTP 409).
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, message)
    }

    /// `FAILED_PRECONDITION` (HTTP 400).
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }

    /// `ABORTED` (HTTP 409): what an `etag` mismatch gets (AIP-154).
    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(Code::Aborted, message)
    }

    /// `UNIMPLEMENTED` (HTTP 501).
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, message)
    }

    /// `INTERNAL` (HTTP 500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// `UNAVAILABLE` (HTTP 503).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    /// The status with a `google.rpc.BadRequest` detail listing `violations`.
    pub fn with_bad_request(mut self, violations: Vec<FieldViolation>) -> Self {
        self.details.push(Any::BadRequest(BadRequest {
            field_violations: violations,
        }));
        self
    }

    /// The status with a detail added.
    pub fn with_detail(mut self, detail: impl Into<Any>) -> Self {
        self.details.push(detail.into());
        self
    }

    /// The code.
    pub fn code(&self) -> Code {
        Code::from_i32(self.code)
    }

    /// The HTTP status this error is answered with.
    pub fn http_status(&self) -> u16 {
        self.code().http_status()
    }

    /// The `BadRequest` detail, if any.
    pub fn bad_request(&self) -> Option<&BadRequest> {
        self.details.iter().find_map(|d| match d {
            Any::BadRequest(b) => Some(b),
            _ => None,
        })
    }

    /// The body of an HTTP error response as Google's REST APIs write it:
    /// `{"error": {"code": <HTTP status>, "message", "status": "INVALID_ARGUMENT",
    /// "details": [...]}}`. Note `code` is the HTTP status here, the rpc code's name is
    /// `status`.
    pub fn to_http_body(&self, encoding: EnumEncoding) -> Value {
        let mut error = json!({
            "code": self.http_status(),
            "message": self.message,
            "status": self.code().as_str(),
        });
        if !self.details.is_empty() {
            error["details"] = crate::json::to_value(&self.details, encoding);
        }
        json!({ "error": error })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for Status {}

impl From<BadRequest> for Status {
    /// `INVALID_ARGUMENT` with the violations as its detail; the message lists them.
    fn from(b: BadRequest) -> Self {
        let message = b.to_string();
        Status::invalid_argument(message).with_detail(b)
    }
}

/// `google.rpc.BadRequest`: what was wrong with a request, field by field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BadRequest {
    #[serde(alias = "field_violations", skip_serializing_if = "is_default")]
    pub field_violations: Vec<FieldViolation>,
}

impl BadRequest {
    /// Whether no violation was found.
    pub fn is_empty(&self) -> bool {
        self.field_violations.is_empty()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.field_violations
            .push(FieldViolation::new(field, description));
    }

    /// `Ok` if nothing was recorded, else `Err(self)`.
    pub fn into_result(self) -> Result<(), BadRequest> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// The violations of one field path.
    pub fn for_field<'a>(
        &'a self,
        field: &'a str,
    ) -> impl Iterator<Item = &'a FieldViolation> + 'a {
        self.field_violations
            .iter()
            .filter(move |v| v.field == field)
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field_violations.as_slice() {
            [] => f.write_str("invalid request"),
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} invalid fields: ", many.len())?;
                for (i, v) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for BadRequest {}

/// One invalid field: its path (`service.template.containers[0].image`) and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FieldViolation {
    #[serde(skip_serializing_if = "is_default")]
    pub field: String,
    #[serde(skip_serializing_if = "is_default")]
    pub description: String,
    #[serde(skip_serializing_if = "is_default")]
    pub reason: String,
    #[serde(alias = "localized_message", skip_serializing_if = "Option::is_none")]
    pub localized_message: Option<LocalizedMessage>,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
            ..Default::default()
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.description)
        } else {
            write!(f, "{}: {}", self.field, self.description)
        }
    }
}

/// `google.rpc.LocalizedMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalizedMessage {
    #[serde(skip_serializing_if = "is_default")]
    pub locale: String,
    #[serde(skip_serializing_if = "is_default")]
    pub message: String,
}

/// `google.rpc.ErrorInfo`: a machine-readable reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorInfo {
    #[serde(skip_serializing_if = "is_default")]
    pub reason: String,
    #[serde(skip_serializing_if = "is_default")]
    pub domain: String,
    #[serde(skip_serializing_if = "is_default")]
    pub metadata: BTreeMap<String, String>,
}
