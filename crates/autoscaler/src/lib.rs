//! The autoscaler: being written.
