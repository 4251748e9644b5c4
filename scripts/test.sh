#!/usr/bin/env bash
# The whole test suite: formatting, lints, the test fixtures, then every test of the
# workspace. Under CI=true a system test whose prerequisites are missing fails instead of
# skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

scripts/setup.sh
# setup.sh may just have installed Rust: load its environment into this shell.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== test fixtures: static probe and images"
cargo run --quiet --locked -p testkit -- build-images
echo "== cargo test"
mkdir -p target
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.log
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo's own last line is a doc-test summary). A
# test that skipped for a missing prerequisite prints "SKIPPED:" and counts as skipped.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     /^SKIPPED:/ { skipped += 1 }
     END { printf "total: %d passed, %d failed, %d skipped\n", passed - skipped, failed, ignored + skipped }' target/test-output.log
exit "$status"
