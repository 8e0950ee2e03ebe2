#!/usr/bin/env bash
# Reports each component of the local cluster: running (with PID) or stopped; exits 1 if any is down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

down=0 rss_total=0 peak_total=0
for c in "${COMPONENTS[@]}"; do
  pid=$(pid_of "$c")
  if [ -n "$pid" ]; then
    rss=$(kib "$pid" VmRSS) peak=$(kib "$pid" VmHWM)
    rss_total=$((rss_total + rss)) peak_total=$((peak_total + peak))
    printf '%-24s running (pid %s, rss %d MiB, peak %d MiB)\n' "$c" "$pid" $((rss / 1024)) $((peak / 1024))
  else
    printf '%-24s stopped\n' "$c"; down=1
  fi
done
printf '%-24s rss %d MiB, sum of peaks %d MiB\n' "components" $((rss_total / 1024)) $((peak_total / 1024))
if [ -f "/sys/fs/cgroup/memory$CGROUP_ROOT/memory.max_usage_in_bytes" ]; then
  printf '%-24s peak %d MiB\n' "pods (cgroup)" \
    $(( $(cat "/sys/fs/cgroup/memory$CGROUP_ROOT/memory.max_usage_in_bytes") / 1048576 ))
fi
if [ -f "$KUBECONFIG_ADMIN" ] && [ "$down" -eq 0 ]; then
  kubectl_ get nodes -o wide 2>&1 | sed 's/^/  /'
fi
if mountpoint -q "$CLUSTER_NETNS" 2>/dev/null; then
  printf '%-24s present (enter it: nsenter --net=%s)\n' "network namespace" "$CLUSTER_NETNS"
else printf '%-24s absent\n' "network namespace"; fi
if ip link show "$HOST_LINK" >/dev/null 2>&1; then printf '%-24s present\n' "veth $HOST_LINK"
else printf '%-24s absent\n' "veth $HOST_LINK"; fi
exit "$down"
