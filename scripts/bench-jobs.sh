#!/usr/bin/env bash
# Jobs benchmark (the jobs issue), as root: an execution of 1000 tasks running `true` in the
# busybox test image, 50 at once, through `homerun up` (release build), from `:run` until
# its operation is done, against 1000 bare `runc run` of an equivalent bundle, 50 at once;
# 3 repetitions each, alternating. Runs the `jobs_bench` example of the homerun crate.
# Settings (environment): BENCH_TASKS (1000), BENCH_PARALLELISM (50), BENCH_REPS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if [ "$(id -u)" -ne 0 ]; then
    echo "bench-jobs.sh: run as root (containers, bridge, network namespaces)" >&2
    exit 1
fi
scripts/setup.sh >/dev/null
cargo build --quiet --release --locked -p homerun
cargo run --quiet --locked -p testkit -- build-images >/dev/null
cargo run --quiet --release --locked -p homerun --example jobs_bench
