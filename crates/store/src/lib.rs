//! The store: being written.
