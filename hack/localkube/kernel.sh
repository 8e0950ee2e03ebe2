# The kernel settings the kubelet changes when it starts (setupKernelTunables in
# pkg/kubelet/cm: overcommit, panic on oops, key quotas). Unlike the network's, they belong to
# the whole machine, not to the cluster's namespace, so their values from before the cluster's
# first kubelet are kept and cluster-down puts them back. Source it.
# shellcheck shell=bash

KUBELET_TUNABLES=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
TUNABLES_SAVED=$D/kernel-tunables.saved

save_kernel_tunables() {  # before the kubelet starts; a running one has changed them already
  if [ -f "$TUNABLES_SAVED" ] || [ -n "$(pid_of kubelet)" ]; then return 0; fi
  local name
  for name in "${KUBELET_TUNABLES[@]}"; do
    printf '%s=%s\n' "$name" "$(sysctl -n "$name")"
  done | put "$TUNABLES_SAVED"
}

restore_kernel_tunables() {  # once the kubelet has stopped
  [ -f "$TUNABLES_SAVED" ] || return 0
  # shellcheck disable=SC2046 # one argument per line of the file
  if sysctl -qw $(cat "$TUNABLES_SAVED"); then
    rm -f "$TUNABLES_SAVED"
  else  # kept: the next cluster-down tries again, and the values are not lost
    log "could not restore every kernel setting of $TUNABLES_SAVED; it is kept"
  fi
}
