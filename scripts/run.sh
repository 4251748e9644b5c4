#!/usr/bin/env bash
# homerun's main job: the platform up with a sample service deployed, on the embedded
# defaults (state in /var/lib/homerun, runc, the homerun0 bridge on 10.88.0.0/16, services
# on 0.0.0.0:8080, the Admin API on 127.0.0.1:8090).
#
# It installs what is missing, builds homerun (release) and the probe image, starts a
# registry on loopback with the probe image in it, runs `homerun up`, deploys the probe as
# the service `sample` with `homerun deploy`, and prints curl lines that work. Ctrl-C (or
# SIGTERM) drains and stops everything: homerun exits with nothing left behind.
#
# HOMERUN_DEMO_REGISTRY_PORT (5050) moves the registry; every `homerun up` flag has its
# HOMERUN_* variable (HOMERUN_INGRESS_ADDR, HOMERUN_DATA_DIR, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
REGISTRY_PORT=${HOMERUN_DEMO_REGISTRY_PORT:-5050}

scripts/setup.sh
# setup.sh may just have installed Rust: load its environment into this shell.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked -p homerun
cargo run --quiet --locked -p testkit -- build-images >/dev/null
homerun=target/release/homerun

work=$(mktemp -d /tmp/homerun-demo.XXXXXX)
pids=()
cleanup() {
    # homerun first (it drains its instances), then the registry.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
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
registry_pid=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done
image="127.0.0.1:$REGISTRY_PORT/homerun/probe:latest"
skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$PWD/target/testimages/oci/probe:latest" "docker://$image"
echo "registry: pushed $image"

"$homerun" up &
homerun_pid=$!
# Stopped in this order by cleanup: homerun, then the registry.
pids=("$homerun_pid" "$registry_pid")
api=${HOMERUN_API_ADDR:-127.0.0.1:8090}
data_dir=${HOMERUN_DATA_DIR:-/var/lib/homerun}
for _ in $(seq 300); do
    # The Admin API takes the admin token homerun writes to its data directory.
    if [ -r "$data_dir/admin-token" ]; then
        curl -fsS -H "Authorization: Bearer $(cat "$data_dir/admin-token")" \
            "http://$api/v2/projects/local/locations/local/services" >/dev/null 2>&1 && break
    fi
    kill -0 "$homerun_pid" 2>/dev/null || { echo "homerun up exited" >&2; exit 1; }
    sleep 0.1
done

# Public, as `gcloud run deploy --allow-unauthenticated`: services are private otherwise.
"$homerun" deploy sample --image "$image" --allow-unauthenticated
port=${HOMERUN_INGRESS_ADDR:-0.0.0.0:8080}
port=${port##*:}
cat <<EOF

The sample service is up. Try:
  curl http://sample.localhost:$port/              # what the instance sees (env, mounts, limits)
  curl http://sample.localhost:$port/headers       # the request as the instance got it
  curl -H 'Host: sample.localhost' http://127.0.0.1:$port/
  $homerun services list
  $homerun deploy sample --image $image --set-env-vars GREETING=hello   # a new revision
  $homerun revisions list
  # A private service (403 without an ID token), and a service account allowed to call it:
  $homerun deploy private --image $image
  $homerun services add-iam-policy-binding private --member serviceAccount:me@local.iam.gserviceaccount.com --role roles/run.invoker
  curl -H "Authorization: Bearer \$($homerun auth print-identity-token --impersonate-service-account me@local.iam.gserviceaccount.com --audiences http://private.localhost:$port)" http://private.localhost:$port/
Instances start on the first request and stop when idle (about two minutes).
Ctrl-C drains and stops homerun.
EOF
wait "$homerun_pid"
