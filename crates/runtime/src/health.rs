//! Startup and liveness probes (TCP, HTTP, gRPC health checking): being written.
