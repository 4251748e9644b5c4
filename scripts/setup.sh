#!/usr/bin/env bash
# Installs everything homerun and its tests need on Debian 12, as root. Idempotent: packages
# already present are not fetched again.
set -euo pipefail

# runc/runsc: the OCI runtimes (gen2/gen1); docker-registry + skopeo + apache2-utils: the real
# registry the tests start and feed; busybox-static: the shell test image; umoci: an
# independent unpacker the tests check images with; iproute2/iptables: bridge, netns, NAT.
PACKAGES=(runc runsc docker-registry skopeo umoci busybox-static apache2-utils iproute2 iptables
          curl ca-certificates gcc libc6-dev pkg-config)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup.sh: missing packages ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# On a machine with systemd the docker-registry package starts an open registry on :5000 on
# every interface. homerun's tests and main job start their own on loopback, so that one goes.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled docker-registry >/dev/null 2>&1; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# Google's official Python client, for the acceptance test crates/homerun/tests/python_client.rs,
# and PyJWT (with its RS256 backend, cryptography), which verifies homerun's ID tokens there
# and which google-auth needs to verify a token against a JWKS.
if ! python3 -c "import google.cloud.run_v2, jwt, cryptography" >/dev/null 2>&1; then
    echo "setup.sh: installing google-cloud-run and pyjwt (pip)"
    python3 -m pip install --quiet google-cloud-run "pyjwt[crypto]"
fi

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# The workspace needs Rust 1.80 or newer (Debian 12's own cargo is 1.65).
cargo_ok() {
    command -v cargo >/dev/null 2>&1 || return 1
    local minor
    minor=$(cargo --version | sed -E 's/^cargo 1\.([0-9]+).*/\1/')
    [ "$minor" -ge 80 ] 2>/dev/null
}
if ! cargo_ok; then
    echo "setup.sh: installing a current Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
for component in clippy rustfmt; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
        rustup component add "$component"
    fi
done
echo "setup.sh: ready ($(cargo --version), $(runc --version | head -1), $(skopeo --version))"
