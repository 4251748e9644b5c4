#!/usr/bin/env bash
# Image pull benchmark: a ~100 MiB image of 5 gzip layers (incompressible content) from a
# local docker-registry, pulled and unpacked by homerun cold (empty store) and warm (store
# already has it), against the baseline `skopeo copy docker://... oci:DIR` + `umoci unpack`
# in the same run. Results go to stdout and target/bench/pull.json (hyperfine's export).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
MIB=${BENCH_MIB:-100}
LAYERS=${BENCH_LAYERS:-5}
RUNS=${BENCH_RUNS:-10}

scripts/setup.sh >/dev/null
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build --release --locked -p homerun -p testkit

work=$(mktemp -d /tmp/homerun-bench.XXXXXX)
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

target/release/testkit bench-image "$work/layout" "$MIB" "$LAYERS" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
ref="127.0.0.1:$port/bench/image:latest"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/layout:latest" "docker://$ref"
size=$(du -sm "$work/storage" | cut -f1)
echo "image: $ref, $LAYERS layers, ${size} MiB in the registry"

homerun="$PWD/target/release/homerun"
"$homerun" --data-dir "$work/warm" images pull "$ref" >/dev/null 2>&1
mkdir -p target/bench
hyperfine --warmup 1 --runs "$RUNS" --export-json target/bench/pull.json \
    -n "homerun cold pull+unpack" --prepare "rm -rf $work/cold" \
    "$homerun --data-dir $work/cold images pull $ref" \
    -n "skopeo copy + umoci unpack (baseline)" --prepare "rm -rf $work/sk $work/bundle" \
    "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$ref oci:$work/sk:t && umoci unpack --image $work/sk:t $work/bundle" \
    -n "homerun warm pull" --prepare "true" \
    "$homerun --data-dir $work/warm images pull $ref"
python3 - target/bench/pull.json <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
    print(f'{r["command"]:<40} median {r["median"]*1000:8.1f} ms  min {t[0]*1000:8.1f}  max {t[-1]*1000:8.1f}  (n={len(t)})')
PY
