# The node's network and the containment net that keeps every packet of ours on this machine.
# Source it.
# shellcheck shell=bash

SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables)

check_address_plan() {
  python3 "$LOCALKUBE_SRC/netplan.py" --own "$NODE_BRIDGE,$POD_BRIDGE" \
    NODE="$NODE_CIDR" POD="$POD_CIDR" SERVICE="$SERVICE_CIDR" \
    || die "address ranges overlap the host's; set CAIRN_NODE_CIDR/CAIRN_NODE_IP, CAIRN_POD_CIDR or CAIRN_SERVICE_CIDR"
}

kube_chains_present() {
  local t
  for t in filter nat mangle; do
    iptables-save -t "$t" 2>/dev/null | grep -q '^:KUBE-' && return 0
  done
  return 1
}

setup_network() {
  check_address_plan
  # KUBE-* chains that predate us belong to another Kubernetes: refuse rather than fight over them.
  if [ ! -f "$D/network.active" ] && kube_chains_present; then
    die "iptables already has KUBE-* chains and they are not ours: is another Kubernetes running here?"
  fi
  touch "$D/network.active"

  if [ ! -f "$D/sysctl.saved" ]; then
    sysctl -n "${SYSCTLS[@]}" | paste -d= <(printf '%s\n' "${SYSCTLS[@]}") - > "$D/sysctl.saved"
  fi
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge
  ip addr replace "$NODE_IP/${NODE_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # A ClusterIP that kube-proxy has not translated dies on this portless bridge instead of
  # following the default route out of the machine.
  ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE"
  ensure_containment
}

# The safety net: REJECT (callers fail at once) anything forwarded from pods to the external
# interface and anything addressed to our ranges that would leave through it.
ensure_containment() {
  local ext; ext=$(external_interface)
  iptables -N "$CONTAIN_CHAIN" 2>/dev/null || iptables -F "$CONTAIN_CHAIN"
  iptables -A "$CONTAIN_CHAIN" -s "$POD_CIDR" -o "$ext" -j REJECT --reject-with icmp-net-prohibited
  local cidr
  for cidr in "$POD_CIDR" "$SERVICE_CIDR" "$NODE_CIDR"; do
    iptables -A "$CONTAIN_CHAIN" -d "$cidr" -o "$ext" -j REJECT --reject-with icmp-net-prohibited
  done
  # Our jump must come first: kube-proxy and CNI insert ACCEPT rules into FORWARD too.
  local hook
  for hook in FORWARD OUTPUT; do
    while iptables -D "$hook" -j "$CONTAIN_CHAIN" 2>/dev/null; do :; done
    iptables -I "$hook" 1 -j "$CONTAIN_CHAIN"
  done
}

# Removes rules that jump to, and then the chains named, PREFIX* in every table (v4 and v6).
delete_chains() {
  local prefix=$1 tool table rule chain
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null || continue
    for table in filter nat mangle raw; do
      local rules
      rules=$("$tool-save" -t "$table" 2>/dev/null | grep -E "^-A [A-Z]+ .*-j $prefix" || true)
      while read -r rule; do
        [ -n "$rule" ] && { eval "$tool -t $table -D ${rule#-A }" 2>/dev/null || true; }
      done <<< "$rules"
      for chain in $("$tool-save" -t "$table" 2>/dev/null | sed -n "s/^:\($prefix[^ ]*\) .*/\1/p"); do
        "$tool" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$tool-save" -t "$table" 2>/dev/null | sed -n "s/^:\($prefix[^ ]*\) .*/\1/p"); do
        "$tool" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

teardown_network() {
  [ -f "$D/network.active" ] || return 0
  delete_chains KUBE-
  delete_chains "$CONTAIN_CHAIN"
  local dev
  for dev in "$POD_BRIDGE" "$NODE_BRIDGE"; do
    ip link show "$dev" >/dev/null 2>&1 && ip link del "$dev"
  done
  if [ -f "$D/sysctl.saved" ]; then
    sysctl -qw $(cat "$D/sysctl.saved") || true
    rm -f "$D/sysctl.saved"
  fi
  rm -f "$D/network.active"
}
