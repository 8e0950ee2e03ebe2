#!/usr/bin/env bash
# The demo: on the local cluster built from source, the Cairn operator trains the iris example
# in a pod, registers it as ModelVersion iris-v1 with its metrics and lineage, validates it
# against the Model's gate, resolves the `production` alias to it, and serves it with
# cairn-serve behind a Service (the ModelDeployment follows the alias).
set -euo pipefail
. "$(dirname "$0")/localkube/lib.sh"
export KUBECONFIG=$KUBECONFIG_ADMIN
repo=$(cd "$(dirname "$0")/.." && pwd)
ns=cairn-demo
k() { "$K8S_BIN/kubectl" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "the node and Cairn's images in its containerd"
k get nodes -o wide
ctr_ images ls -q 2>/dev/null | grep -E '^docker.io/cairn/' | sed 's/^/  /'

step "Cairn's custom resources"
k apply --server-side --force-conflicts -f "$repo/crds/" >/dev/null
k wait --for=condition=Established crd --all --timeout=60s >/dev/null
k get crd -o custom-columns=NAME:.metadata.name,SHORT:.spec.names.shortNames | grep cairn.dev

step "a fresh namespace $ns with its artifact store"
k delete namespace "$ns" --ignore-not-found --wait=true --timeout=180s >/dev/null
"$repo/hack/localkube/artifacts-claim.sh" --delete "$ns"
k create namespace "$ns" >/dev/null
"$repo/hack/localkube/artifacts-claim.sh" "$ns" >/dev/null

step "the operator (cairn-operator -n $ns, in the background; log: $LOGS/demo-operator.log)"
cairn-operator -n "$ns" --health-addr 127.0.0.1:18080 > "$LOGS/demo-operator.log" 2>&1 &
operator_pid=$!
trap 'kill "$operator_pid" 2>/dev/null || true' EXIT

step "kubectl apply -n $ns -f examples/iris/"
k apply -n "$ns" -f "$repo/examples/iris/"
k wait -n "$ns" trainingrun/iris-1 --for=condition=Registered --timeout=300s
k wait -n "$ns" modelversion/iris-v1 --for=condition=Ready --timeout=120s
k wait -n "$ns" model/iris --for=jsonpath='{.status.aliases.production}'=1 --timeout=120s
k wait -n "$ns" modeldeployment/iris --for=condition=Available --timeout=180s

step "an Open Inference Protocol request to the Service (ClusterIP; there is no cluster DNS)"
ip=$(k get -n "$ns" service iris -o jsonpath='{.spec.clusterIP}')
body='{"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}'
echo "POST http://$ip:8080/v2/models/iris/infer $body"
curl -s --max-time 10 --retry 10 --retry-connrefused --retry-delay 1 -H 'Content-Type: application/json' -d "$body" \
  "http://$ip:8080/v2/models/iris/infer"
echo

step "kubectl get cairn -n $ns"
k get cairn -n "$ns"
step "the registered version: artifact, lineage, metrics, gates"
k get -n "$ns" modelversion iris-v1 -o jsonpath='{.spec}{"\n"}{.status.gates}{"\n"}'
step "Events"
k get events -n "$ns" --field-selector involvedObject.kind!=Pod --sort-by=.lastTimestamp \
  -o custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message | tail -12

printf '\nexport KUBECONFIG=%s\nexport PATH=%s:$PATH\n' "$KUBECONFIG_ADMIN" "$K8S_BIN"
