# The cluster's network: a network namespace of its own, joined to the host by one veth pair.
# Source it.
#
# Containment is by construction: the namespace's routes cover the node, pod and service ranges
# and nothing else, so a packet from a component or a pod to any other address has no route. The
# host's iptables and sysctls are never touched; kube-proxy's rules, IP forwarding and bridge
# netfilter live in the namespace and go with it.
# shellcheck shell=bash

check_address_plan() {
  python3 "$LOCALKUBE_SRC/netplan.py" --own "$HOST_LINK" --node "$NODE_IP" --host "$HOST_IP" \
    NODE="$NODE_CIDR" POD="$POD_CIDR" SERVICE="$SERVICE_CIDR" \
    || die "address ranges overlap the host's or each other; set CAIRN_NODE_CIDR, CAIRN_NODE_IP, CAIRN_HOST_IP, CAIRN_POD_CIDR or CAIRN_SERVICE_CIDR"
}

# Creates the namespace (bound to $CLUSTER_NETNS) unless it exists. Components still running in
# a namespace whose file is gone would be split from the new one: refuse instead.
ensure_cluster_netns() {
  mountpoint -q "$CLUSTER_NETNS" 2>/dev/null && return 0
  local c
  for c in "${COMPONENTS[@]}"; do
    [ -z "$(pid_of "$c")" ] \
      || die "$c is running outside the cluster's network namespace ($CLUSTER_NETNS is not mounted): run make cluster-down (with the checkout that started it), then make cluster-up"
  done
  ip link show "$HOST_LINK" >/dev/null 2>&1 \
    && die "the host already has a link named $HOST_LINK that is not this cluster's: is an older cluster still up? make cluster-down with the checkout that started it"
  mkdir -p "$(dirname "$CLUSTER_NETNS")"
  touch "$CLUSTER_NETNS"
  unshare --net="$CLUSTER_NETNS" true
}

setup_network() {
  check_address_plan
  ensure_cluster_netns
  local prefix=${NODE_CIDR#*/}
  if ! ip link show "$HOST_LINK" >/dev/null 2>&1; then
    # Created inside, then the host's end moved out to this script's own namespace. A pair
    # left whole inside by a run killed between the two steps is made again.
    in_cluster ip link del "$NODE_LINK" 2>/dev/null || true
    in_cluster ip link add "$NODE_LINK" type veth peer name "$HOST_LINK"
    in_cluster ip link set "$HOST_LINK" netns "$$"
  fi
  in_cluster ip link set lo up
  in_cluster ip addr replace "$NODE_IP/$prefix" dev "$NODE_LINK"
  in_cluster ip link set "$NODE_LINK" up
  # A ClusterIP that kube-proxy has not translated goes nowhere: the host answers no ARP for it.
  in_cluster ip route replace "$SERVICE_CIDR" dev "$NODE_LINK"
  in_cluster sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

  ip addr replace "$HOST_IP/$prefix" dev "$HOST_LINK"
  ip link set "$HOST_LINK" up
  ip route replace "$POD_CIDR" via "$NODE_IP" dev "$HOST_LINK"
  ip route replace "$SERVICE_CIDR" via "$NODE_IP" dev "$HOST_LINK"
}

# After every process of the cluster has stopped: unmounting the file ends the namespace, with
# its links, routes and rules; the host's end of the pair goes with it.
teardown_network() {
  if mountpoint -q "$CLUSTER_NETNS" 2>/dev/null; then
    umount "$CLUSTER_NETNS" 2>/dev/null || umount -l "$CLUSTER_NETNS"
  fi
  rm -f "$CLUSTER_NETNS"
  # (it may be on its way out with the namespace already)
  ip link del "$HOST_LINK" 2>/dev/null || true
}
