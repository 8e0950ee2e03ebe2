#!/usr/bin/env bash
# Installs (or, with --delete, removes) the Gateway API's standard CRDs on the cluster of
# $KUBECONFIG, from the sigs.k8s.io/gateway-api Go module: HTTPRoutes for routed canaries.
# No Gateway controller comes with them; the routes' weights are what Cairn sets.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

module="sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}"
dir=$(cd "$(dirname "$0")" && go mod download -json "$module" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
crds="$dir/config/crd/standard"
kubectl=(kubectl)
[ -x "$K8S_BIN/kubectl" ] && kubectl=("$K8S_BIN/kubectl")
if [ "${1:-}" = "--delete" ]; then
  "${kubectl[@]}" delete --ignore-not-found -f "$crds" >/dev/null
  exit 0
fi
"${kubectl[@]}" apply --server-side --force-conflicts -f "$crds" >/dev/null
"${kubectl[@]}" wait --for=condition=Established --timeout=60s \
  crd/httproutes.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io >/dev/null
log "Gateway API ${GATEWAY_API_VERSION} CRDs installed"
