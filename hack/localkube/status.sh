#!/usr/bin/env bash
# Reports each component of the local cluster: running (with PID) or stopped; exits 1 if any is down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

down=0
for c in "${COMPONENTS[@]}"; do
  pid=$(pid_of "$c")
  if [ -n "$pid" ]; then printf '%-24s running (pid %s)\n' "$c" "$pid"
  else printf '%-24s stopped\n' "$c"; down=1; fi
done
if [ -f "$KUBECONFIG_ADMIN" ] && [ "$down" -eq 0 ]; then
  kubectl_ get nodes -o wide 2>&1 | sed 's/^/  /'
fi
for dev in "$NODE_BRIDGE" "$POD_BRIDGE"; do
  if ip link show "$dev" >/dev/null 2>&1; then printf '%-24s present\n' "bridge $dev"
  else printf '%-24s absent\n' "bridge $dev"; fi
done
exit "$down"
