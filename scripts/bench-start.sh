#!/usr/bin/env bash
# Instance start benchmark (runtime): homerun starting the cached probe image until its port
# answers, against bare `runc run` of a prepared bundle, N times each (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
scripts/setup.sh >/dev/null
cargo run --quiet --locked -p testkit -- build-images >/dev/null
cargo run --quiet --release --locked -p runtime --example start_bench -- "${1:-50}"
