//! homerun's image store: pulls OCI and Docker images from registries and local archives,
//! verifies every byte, unpacks each layer once into a content-addressed directory, and
//! assembles root filesystems over them with overlayfs.

mod error;
pub mod manifest;
pub mod pull;
pub mod reference;
pub mod rootfs;
pub mod source;
pub mod store;
pub mod unpack;
mod verify;

pub use error::ImageError;
pub use pull::{PullOutcome, PullProgress, Quiet};
pub use reference::{ImageSource, Reference};
pub use source::RegistryOptions;
pub use store::{ImageRecord, Lease, PruneReport, Store};
