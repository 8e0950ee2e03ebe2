#!/usr/bin/env bash
# Gives a namespace of the local cluster its artifact store: the PersistentVolumeClaim
# `cairn-artifacts` (what pvc:// URIs without another claim use), bound to a PersistentVolume on
# a directory of this machine. There is no dynamic provisioner here, so each namespace gets one.
#   hack/localkube/artifacts-claim.sh NAMESPACE        create (idempotent); prints the directory
#   hack/localkube/artifacts-claim.sh --delete NAMESPACE
set -euo pipefail
. "$(dirname "$0")/lib.sh"

delete=0
[ "${1:-}" = "--delete" ] && { delete=1; shift; }
ns=${1:?usage: artifacts-claim.sh [--delete] NAMESPACE}
claim=cairn-artifacts
pv="cairn-artifacts-$ns"
dir="$D/artifacts/$ns"

if [ "$delete" -eq 1 ]; then
  kubectl_ -n "$ns" delete pvc "$claim" --ignore-not-found --wait=false >/dev/null
  kubectl_ delete pv "$pv" --ignore-not-found --wait=false >/dev/null
  rm -rf "$dir"
  exit 0
fi

# Trainers run as an unprivileged user and create their own run directories in here.
mkdir -p "$dir"; chmod 0777 "$dir"
kubectl_ apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $pv
  labels: {cairn.dev/artifacts: "true"}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $ns, name: $claim}
  hostPath: {path: $dir, type: Directory}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: $claim
  namespace: $ns
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  volumeName: $pv
  resources: {requests: {storage: 10Gi}}
YAML
echo "$dir"
