#!/usr/bin/env bash
# Services benchmarks (the services issue), as root: cold start from zero, the router's
# overhead against the instance's own address (wrk), a burst from 0 to 200 clients, and
# homerun's memory with 100 idle instances and CPU per 1000 requests/s. Runs the
# `serve_bench` example of the homerun crate against the release binary.
# Arguments (optional): the parts to run, any of `cold warm burst memory`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
scripts/setup.sh >/dev/null
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench-serve.sh: installing wrk"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
fi
cargo build --quiet --release --locked -p homerun
cargo run --quiet --locked -p testkit -- build-images >/dev/null
cargo run --quiet --release --locked -p homerun --example serve_bench -- "$@"
