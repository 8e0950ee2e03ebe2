#!/usr/bin/env bash
# Installs the Debian packages the local cluster runs on, when any is missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

packages=(runc containernetworking-plugins iptables conntrack buildah skopeo debootstrap
  openssl curl iproute2 util-linux kmod ca-certificates
  prometheus)  # the canary analysis tests scrape the serving pods with a real Prometheus
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
