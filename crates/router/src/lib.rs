//! homerun's data plane: ingress, routing by host and traffic split, per-instance
//! concurrency, the activator queue and the header policy.
//!
//! The router knows nothing of runc or of the Admin API. The controller feeds it:
//!
//! - a [`table::RoutingTable`] (Host → service → traffic split and tags), swapped atomically
//!   through [`table::SharedTable`];
//! - per revision, its [`pool::RevisionSettings`] and ready [`pool::Endpoint`]s, through
//!   [`pool::Pools`];
//!
//! and hears back through [`events::Events`]: demand (a request queued, for scale from
//! zero and bursts), instances going busy or idle, and instances that failed mid-request.
//!
//! Each service's routes carry its [`access::Access`] (ingress, public or not, invokers,
//! accepted ID-token audiences): the router refuses what Cloud Run would refuse (404 for
//! the ingress, 403 without a credential or without the invoker role, 401 for a token that
//! does not verify or names another audience) before a request takes a slot, checking
//! tokens through the platform's [`access::Verifier`].
//!
//! [`proxy::Router`] ties them together behind one HTTP/1.1 + h2c listener.

pub mod access;
pub mod body;
pub mod events;
pub mod headers;
pub mod pool;
pub mod proxy;
pub mod rng;
pub mod table;
pub mod tls;

pub use access::{
    Access, Credential, Ingress, InternalPeers, Refusal, Verifier, ALL_AUTHENTICATED_USERS,
    ALL_USERS, SERVERLESS_AUTHORIZATION, SIGNATURE_REMOVED,
};
pub use events::{Demand, Event, Events, NoEvents};
pub use pool::{
    AcquireError, Drain, EndSignal, Endpoint, InstanceEnd, Pools, Protocol, QueueConfig,
    RevisionPool, RevisionSettings, RevisionStats, Slot,
};
pub use proxy::{Router, RouterOptions, Scheme, NO_INSTANCE_MESSAGE};
pub use rng::{RandomSource, SplitMix64};
pub use table::{Resolved, RoutingTable, ServiceRoutes, SharedTable, TrafficTarget};
pub use tls::{Tls, TlsError};
