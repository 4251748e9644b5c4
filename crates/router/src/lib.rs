//! The router: being written.
