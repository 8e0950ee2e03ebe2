#!/usr/bin/env bash
# Restarts one component of the running local cluster, as a chaos test does to see the operator
# and its workloads through it: stops COMPONENT by its recorded PID (TERM, then KILL), leaves it
# down for SECONDS, then runs up.sh, which starts only what is missing and waits until the
# cluster is whole again (API server ready, node Ready).
#   usage: restart.sh COMPONENT [SECONDS]    COMPONENT: etcd, kube-apiserver, kubelet, ...
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$LOCALKUBE_SRC/processes.sh"

[ "$(id -u)" -eq 0 ] || die "restarting a component of the local cluster needs root"
component=${1:?usage: restart.sh COMPONENT [SECONDS]}
down=${2:-0}
printf '%s\n' "${COMPONENTS[@]}" | grep -qxF "$component" \
  || die "unknown component $component (one of: ${COMPONENTS[*]})"
[ -n "$(pid_of "$component")" ] || die "$component is not running: nothing to restart"

stop_component "$component"
sleep "$down"
exec "$LOCALKUBE_SRC/up.sh" > /dev/null
