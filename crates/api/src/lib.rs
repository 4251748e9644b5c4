//! Cloud Run Admin API v2 resources: being written.
