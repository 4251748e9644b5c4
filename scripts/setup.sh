#!/usr/bin/env bash
# Installs everything homerun and its tests need on Debian 12, as root. Idempotent: packages
# already present are not fetched again.
set -euo pipefail

# runc/runsc: the OCI runtimes (gen2/gen1); docker-registry + skopeo + apache2-utils: the real
# registry the tests start and feed; busybox-static: the shell test image; umoci: an
# independent unpacker the tests check images with; iproute2/iptables: bridge, netns, NAT.
PACKAGES=(runc runsc docker-registry skopeo umoci busybox-static apache2-utils iproute2 iptables
          curl ca-certificates gcc libc6-dev pkg-config)

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The docker-registry package may start a system-wide registry; homerun's tests start their
# own on free ports, so a packaged one is left as the machine had it.

if ! command -v cargo >/dev/null 2>&1; then
    # Debian 12's own cargo (1.65) is too old for the workspace; rustup provides a current one.
    echo "setup.sh: installing Rust with rustup"
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
