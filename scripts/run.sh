#!/usr/bin/env bash
# homerun's main job.
#
# Once the services issue lands this runs `homerun up` with a sample service deployed from a
# local registry and prints curl lines for its URL. Today the platform does not exist yet, so
# it runs what does: it builds homerun and the probe workload, builds the test images,
# starts a real registry on loopback, pushes the probe image into it, shows it with skopeo,
# pulls it into a scratch image store with `homerun images pull`,
# and serves the probe (the sample service's workload) on port 8080 of every interface, as an
# instance listens. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
REGISTRY_PORT=${HOMERUN_DEMO_REGISTRY_PORT:-5050}
PROBE_PORT=${HOMERUN_DEMO_PORT:-8080}

scripts/setup.sh
# setup.sh may just have installed Rust: load its environment into this shell.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked -p homerun
cargo run --quiet --locked -p testkit -- build-images >/dev/null

work=$(mktemp -d /tmp/homerun-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$REGISTRY_PORT
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done
image="127.0.0.1:$REGISTRY_PORT/homerun/probe:latest"
skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$PWD/target/testimages/oci/probe:latest" "docker://$image"
echo "registry: pushed $image"
skopeo inspect --tls-verify=false "docker://$image" | grep -E '"(Digest|Architecture|Os)"'
target/release/homerun --data-dir "$work/data" images pull "$image"
target/release/homerun --data-dir "$work/data" images list

# An environment of its own, as an instance has: the probe shows its environment to anyone
# who asks, and it listens on all interfaces as the contract says.
env -i PATH=/usr/bin:/bin PORT="$PROBE_PORT" K_SERVICE=sample K_REVISION=sample-00001-abc \
    K_CONFIGURATION=sample target/static/x86_64-unknown-linux-gnu/release/probe &
pids+=($!)
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PROBE_PORT/headers" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "$(target/release/homerun --version): the platform (homerun up) is not built yet; serving its sample workload directly:"
echo "  curl http://127.0.0.1:$PROBE_PORT/            # what the workload sees"
echo "  curl http://127.0.0.1:$PROBE_PORT/headers     # request echo"
echo "  skopeo inspect --tls-verify=false docker://$image"
echo "Ctrl-C stops the registry and the probe."
wait
