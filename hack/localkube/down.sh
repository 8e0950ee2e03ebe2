#!/usr/bin/env bash
# Stops everything cluster-up started (by recorded PID), removes the containers, mounts, cgroups
# and the cluster's network namespace (with the veth pair and the host's routes to it), and puts
# back the kernel settings the kubelet changed. State (PKI, etcd data, images) stays under
# $CAIRN_LOCALKUBE_DIR so the next cluster-up is fast; --purge removes it too.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$LOCALKUBE_SRC/network.sh"
. "$LOCALKUBE_SRC/processes.sh"
. "$LOCALKUBE_SRC/kernel.sh"

[ "$(id -u)" -eq 0 ] || die "stopping the local cluster needs root"
[ -d "$D" ] || { log "nothing to stop"; exit 0; }

# The node agents first, so nothing restarts containers while we remove them.
stop_component kube-proxy
stop_component kubelet
restore_kernel_tunables
if [ -n "$(pid_of containerd)" ]; then
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks kill --all --signal SIGKILL "$task" >/dev/null 2>&1 || true
  done
fi
kill_cgroup_processes
if [ -n "$(pid_of containerd)" ]; then
  sleep 1  # let the shims notice their tasks are gone and exit
  for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete --force "$task" >/dev/null 2>&1 || true; done
fi
stop_component containerd
# Shims of our containerd that outlived it: their command line names our private socket.
for proc in /proc/[0-9]*; do
  if tr '\0' ' ' < "$proc/cmdline" 2>/dev/null | grep -qF -- "-address $CONTAINERD_SOCK"; then
    kill -KILL "${proc#/proc/}" 2>/dev/null || true
  fi
done
for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_component "$c"; done

unmount_under "$D"
# containerd hard-codes its shims' socket directory under /run/containerd; remove what is
# empty now (rmdir never removes anything that is not).
rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null || true
teardown_network
remove_cgroups

if [ "${1:-}" = "--purge" ]; then
  log "removing $D and the node's model cache $MODEL_CACHE_DIR"
  rm -rf "$D" "$MODEL_CACHE_DIR"
fi
log "cluster stopped"
