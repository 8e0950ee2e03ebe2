# Shared settings for the hack/localkube scripts. Source it; do not run it.
# shellcheck shell=bash

LOCALKUBE_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$LOCALKUBE_SRC/versions.env"

# Builds are cached outside the repository, keyed by version, so a fresh clone reuses them.
CAIRN_CACHE_DIR=${CAIRN_CACHE_DIR:-$HOME/.cache/cairn}
BIN_CACHE=$CAIRN_CACHE_DIR/bin
K8S_BIN=$BIN_CACHE/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$BIN_CACHE/etcd-$ETCD_VERSION
CONTAINERD_BIN=$BIN_CACHE/containerd-$CONTAINERD_VERSION
COREDNS_BIN=$BIN_CACHE/coredns-$COREDNS_VERSION

# Runtime state of the cluster (PKI, configs, data, logs, pid files).
CAIRN_LOCALKUBE_DIR=${CAIRN_LOCALKUBE_DIR:-$HOME/.cache/cairn/localkube}
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

# Replaces FILE with standard input only when the content differs, atomically: kube-proxy exits
# and containerd reloads CNI when their files change, so a rerun must leave identical files alone.
put() {
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

log() { printf '[localkube] %s\n' "$*" >&2; }
die() { printf '[localkube] error: %s\n' "$*" >&2; exit 1; }

# Address plan. Every range is checked against the host's addresses, routes and resolvers at
# cluster-up. The whole cluster (every component and pod) lives in a network namespace of its
# own whose only way out is one veth pair to the host: NODE_LINK inside holds the node address,
# HOST_LINK on the host holds HOST_IP and routes the pod and service ranges to the node. The
# namespace has no default route, so nothing in it can reach an address outside these ranges.
NODE_NAME=${CAIRN_NODE_NAME:-cairn-localkube}
HOST_LINK=cairn0
NODE_LINK=eth0
POD_BRIDGE=cni0
NODE_CIDR=${CAIRN_NODE_CIDR:-172.29.0.0/24}
NODE_IP=${CAIRN_NODE_IP:-172.29.0.1}
HOST_IP=${CAIRN_HOST_IP:-172.29.0.2}
POD_CIDR=${CAIRN_POD_CIDR:-172.30.0.0/16}
SERVICE_CIDR=${CAIRN_SERVICE_CIDR:-172.31.0.0/16}
# First address of the service range: the `kubernetes` Service.
API_SERVICE_IP=${CAIRN_API_SERVICE_IP:-172.31.0.1}
# The kube-dns Service (CoreDNS), as on most clusters the tenth address of the range.
DNS_SERVICE_IP=${CAIRN_DNS_SERVICE_IP:-172.31.0.10}
CLUSTER_DOMAIN=cluster.local
COREDNS_IMAGE=docker.io/cairn/coredns:$COREDNS_VERSION
# The node's model cache, where serving pods keep downloaded s3:// models by digest: the
# operator's default (CAIRN_MODEL_CACHE_DIR), writable by the serving pods' uid 1000.
MODEL_CACHE_DIR=/var/cache/cairn/models
API_PORT=${CAIRN_API_PORT:-6443}
ETCD_CLIENT_PORT=${CAIRN_ETCD_PORT:-12379}
ETCD_PEER_PORT=$((ETCD_CLIENT_PORT + 1))
# Our own cgroup under each v1 hierarchy: we create it and remove it, and touch nothing else.
CGROUP_ROOT=/cairn-localkube
PAUSE_IMAGE=docker.io/cairn/pause:dev

D=$CAIRN_LOCALKUBE_DIR
PKI=$D/pki
RUN=$D/run
LOGS=$D/logs
CONTAINERD_SOCK=$RUN/containerd.sock
# The cluster's network namespace, bind-mounted on this file while the cluster exists.
CLUSTER_NETNS=$RUN/netns
KUBECONFIG_ADMIN=$D/kubeconfig
COMPONENTS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

# Runs a command in the cluster's network namespace (and only that: mounts stay the host's, so
# the kubelet's volume mounts are seen by containerd and by us).
in_cluster() { nsenter --net="$CLUSTER_NETNS" "$@"; }
kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr_() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

pid_of() {  # prints the pid of a running component we started, or nothing
  local f=$RUN/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  # The pid must still be our binary: a stale file may name a recycled pid of someone else's.
  if [ -d "/proc/$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(cat "$RUN/$1.exe" 2>/dev/null)" ]; then
    echo "$pid"
  fi
}
