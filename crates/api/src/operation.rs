//! google/longrunning/operations.proto: what every mutation returns.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::json::is_default;
use crate::status::Status;
use crate::wkt::{Any, Duration};

/// A long-running operation, `projects/{p}/locations/{l}/operations/{id}`. Once `done`,
/// exactly one of `error` and `response` is set (a oneof).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// For Cloud Run, the resource as the operation found it (a `Service` for service
    /// mutations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Any>,
    #[serde(skip_serializing_if = "is_default")]
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
    /// The resource once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Any>,
}

impl Operation {
    /// A running operation.
    pub fn running(name: impl Into<String>, metadata: impl Into<Any>) -> Self {
        Operation {
            name: name.into(),
            metadata: Some(metadata.into()),
            ..Default::default()
        }
    }

    /// The operation finished with `response`.
    pub fn succeed(&mut self, response: impl Into<Any>) {
        self.done = true;
        self.error = None;
        self.response = Some(response.into());
    }

    /// The operation finished with `error`.
    pub fn fail(&mut self, error: Status) {
        self.done = true;
        self.response = None;
        self.error = Some(error);
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", default)]
        #[derive(Default)]
        struct Raw {
            name: String,
            metadata: Option<Any>,
            done: bool,
            error: Option<Status>,
            response: Option<Any>,
        }
        let raw = Raw::deserialize(d)?;
        if raw.error.is_some() && raw.response.is_some() {
            return Err(de::Error::custom(
                "an operation has an error or a response, not both (oneof result)",
            ));
        }
        Ok(Operation {
            name: raw.name,
            metadata: raw.metadata,
            done: raw.done,
            error: raw.error,
            response: raw.response,
        })
    }
}

/// The answer to `ListOperations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListOperationsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub operations: Vec<Operation>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
}

/// The body of `POST /v2/{name=projects/*/locations/*/operations/*}:wait`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WaitOperationRequest {
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// At most this long; none: as long as the HTTP request may last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}
