//! homerun's instance runtime (work in progress toward the runtime issue): networking
//! (bridge, IPAM, network namespaces), the container process (command, args, env, user) and
//! log capture exist; bundles, the runc driver and instance lifecycle come next.

pub mod bundle;
pub mod cgroup;
pub mod container;
pub mod entrypoint;
mod error;
pub mod health;
pub mod instance;
pub mod logs;
pub mod net;
pub mod process;
pub mod recovery;
pub mod runc;
pub mod seccomp;

pub use error::RuntimeError;
