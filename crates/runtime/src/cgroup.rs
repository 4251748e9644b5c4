//! A container's cgroup, v1 (hybrid) or v2, read and adjusted directly: being written.
