//! homerun's image store. Work in progress toward the image issue: references, manifests
//! and safe layer unpacking exist; the registry client, layer store, rootfs assembly,
//! records and CLI do not yet.

pub mod manifest;
pub mod reference;
pub mod unpack;
