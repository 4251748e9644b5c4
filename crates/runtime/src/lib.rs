//! homerun's instance runtime: networking (bridge, IPAM, network namespaces), the container
//! process (command, args, env, user), log capture, bundles, the runc driver, containers,
//! instances (with their volumes, probes and CPU states), the address book of which
//! instance has which address, and recovery after a crash. Environment values and volume
//! file contents (secrets) are never logged nor put in errors: their `Debug` shows names and
//! lengths only.

pub mod addresses;
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

pub use addresses::AddressBook;
pub use error::RuntimeError;
