//! Jobs: executions of N tasks, some in parallel, each attempt its own instance, retried on
//! failure.

pub mod progress;
