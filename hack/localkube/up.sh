#!/usr/bin/env bash
# Brings up (or completes) the single-node cluster. Idempotent: running components are kept,
# missing ones started, and leftovers of a run that was killed half-way are cleaned first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$LOCALKUBE_SRC/pki.sh"
. "$LOCALKUBE_SRC/configs.sh"
. "$LOCALKUBE_SRC/network.sh"
. "$LOCALKUBE_SRC/processes.sh"
. "$LOCALKUBE_SRC/kernel.sh"

[ "$(id -u)" -eq 0 ] || die "the local cluster needs root (network, mounts, cgroups)"
start=$(date +%s)
"$LOCALKUBE_SRC/deps.sh"
"$LOCALKUBE_SRC/build.sh"

mkdir -p "$D" "$RUN" "$LOGS"
# Kubelet needs shared mount propagation for its volumes; give it that on our own directory
# instead of changing the host's root mount.
if ! mountpoint -q "$D"; then
  mount --bind "$D" "$D"
fi
mount --make-rshared "$D"

generate_pki
write_configs
# Node directories pods use: the model cache, shared by every serving pod of the node (sticky,
# like /tmp: each pod's user may add entries, and remove only its own).
install -d -m 1777 "$MODEL_CACHE_DIR"
create_cgroups
setup_network

curl_api() { curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://$NODE_IP:$API_PORT$1"; }

start_component etcd "$ETCD_BIN/etcd" --name "$NODE_NAME" --data-dir "$D/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "$NODE_NAME=http://127.0.0.1:$ETCD_PEER_PORT" \
  --listen-metrics-urls "" --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
wait_for 60 etcd in_cluster curl -sf "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

start_component kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" \
  --kubelet-preferred-address-types InternalIP \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
  --profiling="${CAIRN_LOCALKUBE_PROFILING:-false}" \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key"
wait_for 120 "kube-apiserver /readyz" curl_api /readyz

# Each controller's client is limited to --kube-api-qps (default 20): at 20 a second the Job
# controller needs minutes to finish 2,000 Jobs whose pods have all ended (bench-scale's load).
start_component kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$D/controller-manager.kubeconfig" \
  --kube-api-qps 100 --kube-api-burst 200 \
  --authentication-kubeconfig "$D/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$D/controller-manager.kubeconfig" \
  --use-service-account-credentials --service-account-private-key-file "$PKI/sa.key" \
  --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" \
  --leader-elect=false --bind-address 127.0.0.1 --profiling=false

start_component kube-scheduler "$K8S_BIN/kube-scheduler" --config "$D/scheduler.yaml" \
  --authentication-kubeconfig "$D/scheduler.kubeconfig" \
  --authorization-kubeconfig "$D/scheduler.kubeconfig" --bind-address 127.0.0.1 --profiling=false

# The shim and runc must be found on PATH by containerd.
[ -n "$(pid_of containerd)" ] || rm -f "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"
PATH="$CONTAINERD_BIN:$PATH" start_component containerd "$CONTAINERD_BIN/containerd" \
  --config "$D/containerd/config.toml" --log-level warn
wait_for 60 containerd ctr_ version

# Pods cannot start without the sandbox image, which no registry can give us.
images=$LOCALKUBE_SRC/../images
ctr_ images ls -q 2>/dev/null | grep -qxF "$PAUSE_IMAGE" || "$images/build.sh" pause
[ ! -x "$images/load.sh" ] || CTR="$CONTAINERD_BIN/ctr" "$images/load.sh" "$CONTAINERD_SOCK"

# A kubelet started before its configuration changed (clusterDNS, say) is restarted with it.
restart_if_config_changed kubelet "$D/kubelet/config.yaml"
# Ready as reported by a live kubelet: when we (re)started it, the node object may be left over
# from a previous run, so its heartbeat must be newer than this script.
fresh_since=""
[ -n "$(pid_of kubelet)" ] || fresh_since=$(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ)
node_ready() {
  local ready
  ready=$(kubectl_ get node "$NODE_NAME" \
    -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}')
  [ "${ready% *}" = True ] && [[ ! "${ready#* }" < "$fresh_since" ]]
}
save_kernel_tunables
start_component kubelet "$K8S_BIN/kubelet" --config "$D/kubelet/config.yaml" \
  --kubeconfig "$D/kubelet.kubeconfig" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --root-dir "$D/kubelet/root" --cert-dir "$PKI/kubelet-certs"
config_stamp kubelet "$D/kubelet/config.yaml"
start_component kube-proxy "$K8S_BIN/kube-proxy" --config "$D/kube-proxy.yaml"

wait_for 180 "node $NODE_NAME Ready" node_ready
wait_for 120 "the default service account" kubectl_ -n default get serviceaccount default
wait_for 60 "kube-proxy's rules" in_cluster iptables -t nat -S KUBE-SERVICES
"$LOCALKUBE_SRC/dns.sh"

log "cluster up in $(( $(date +%s) - start ))s"
cat <<EOT
export KUBECONFIG=$KUBECONFIG_ADMIN
export PATH=$K8S_BIN:\$PATH   # kubectl $KUBERNETES_VERSION
EOT
