#!/usr/bin/env bash
# Cluster DNS, run the way a real cluster runs it: CoreDNS (built from its Go module by build.sh,
# in an image FROM scratch) as the Deployment coredns in kube-system, behind the Service kube-dns
# at $DNS_SERVICE_IP, which the kubelet gives every pod as its resolver (clusterDNS). It answers
# the cluster's own names only (<service>.<namespace>.svc.cluster.local, pods, reverse lookups
# of cluster addresses) and REFUSES every other name: it has no `forward`, so no query ever
# leaves this machine.
#
# Idempotent, and works on a running cluster: `make cluster-up` runs it last (up.sh restarts a
# kubelet whose configuration predates clusterDNS). `dns.sh --delete` removes it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" = "--delete" ]; then
  kubectl_ -n kube-system delete deployment/coredns service/kube-dns configmap/coredns \
    serviceaccount/coredns --ignore-not-found >/dev/null
  kubectl_ delete clusterrolebinding/system:coredns clusterrole/system:coredns --ignore-not-found >/dev/null
  exit 0
fi

[ -x "$COREDNS_BIN/coredns" ] || "$LOCALKUBE_SRC/build.sh"
images=$LOCALKUBE_SRC/../images
# The image is rebuilt (and imported) only when the binary changed.
if ! ctr_ images ls -q 2>/dev/null | grep -xF "$COREDNS_IMAGE" >/dev/null; then
  tarball=$("$images/build.sh" --static "$COREDNS_IMAGE" "$COREDNS_BIN/coredns")
  ctr_ images import "$tarball" >/dev/null
fi

# As kubeadm's CoreDNS, less what reaches outside: no forward (other names are REFUSED, since no
# server block claims them), no loop detection (nothing to loop through).
kubectl_ apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    $CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
        errors
        health {
            lameduck 5s
        }
        ready
        kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
            pods insecure
            ttl 30
        }
        prometheus :9153
        cache 30
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      # Its own resolver is the node's (empty): CoreDNS never asks anyone else.
      dnsPolicy: Default
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
        # Port 53 without root or capabilities.
        sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "53"}]
      containers:
        - name: coredns
          image: $COREDNS_IMAGE
          imagePullPolicy: Never
          args: [-conf, /etc/coredns/Corefile]
          ports:
            - {name: dns, containerPort: 53, protocol: UDP}
            - {name: dns-tcp, containerPort: 53, protocol: TCP}
            - {name: metrics, containerPort: 9153, protocol: TCP}
          resources:
            requests: {cpu: 50m, memory: 32Mi}
            limits: {memory: 170Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          livenessProbe:
            httpGet: {path: /health, port: 8080}
            periodSeconds: 10
            failureThreshold: 5
          readinessProbe:
            httpGet: {path: /ready, port: 8181}
            periodSeconds: 2
          volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
      volumes:
        - name: config
          configMap: {name: coredns, items: [{key: Corefile, path: Corefile}]}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: $DNS_SERVICE_IP
  ports:
    - {name: dns, port: 53, protocol: UDP}
    - {name: dns-tcp, port: 53, protocol: TCP}
    - {name: metrics, port: 9153, protocol: TCP}
YAML
kubectl_ -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null \
  || die "CoreDNS did not become ready (kubectl -n kube-system describe pods -l k8s-app=kube-dns)"
log "cluster DNS: CoreDNS $COREDNS_VERSION at $DNS_SERVICE_IP (kube-dns), zone $CLUSTER_DOMAIN"
