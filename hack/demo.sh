#!/usr/bin/env bash
# The demo so far: a real single-node cluster built from source, with Cairn's images loaded,
# running a training-image pod. Later milestones extend it to train, register and serve a model.
set -euo pipefail
. "$(dirname "$0")/localkube/lib.sh"
export KUBECONFIG=$KUBECONFIG_ADMIN
k() { "$K8S_BIN/kubectl" "$@"; }

echo "== node"; k get nodes -o wide
echo "== images in the node's containerd"
ctr_ images ls -q | grep -E '^docker.io/cairn/' | sed 's/^/  /'
echo "== a pod from cairn/trainer:dev"
k delete pod cairn-demo --ignore-not-found --wait=true >/dev/null
k run cairn-demo --image=docker.io/cairn/trainer:dev --image-pull-policy=Never --restart=Never \
  --command -- python -c "import sklearn, cairn; print('sklearn', sklearn.__version__, 'cairn', cairn.__version__, 'answer', 6*7)"
k wait pod/cairn-demo --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s >/dev/null
k logs cairn-demo
k delete pod cairn-demo --wait=false >/dev/null
echo
echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
echo "export PATH=$K8S_BIN:\$PATH"
