//! Test support for homerun: the static probe, the test images (OCI layouts and archives built
//! by the repo itself), and a real registry (`docker-registry` fed by `skopeo`).

pub mod bench;
mod build;
mod error;
pub mod http;
pub mod images;
pub mod layer;
pub mod layout;
pub mod platform;
pub mod prereq;
pub mod registry;

pub use build::{catalogue, static_probe, workspace_root, BUSYBOX};
pub use error::{Error, Result};
pub use images::{Catalogue, TestImage};
pub use prereq::{in_ci, require};
pub use registry::{Credentials, Registry};
