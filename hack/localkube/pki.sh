# Generates the cluster's PKI and kubeconfigs once; later runs reuse them. Source it.
# shellcheck shell=bash

issue_cert() {  # [CA=NAME] issue_cert NAME CN ORG USAGE [SAN...]; USAGE is serverAuth, clientAuth or both
  local name=$1 cn=$2 org=$3 usage=$4 ca=${CA:-ca}; shift 4
  [ -f "$PKI/$name.crt" ] && return 0
  local ext="$PKI/$name.ext" subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [ $# -gt 0 ]; then local IFS=,; echo "subjectAltName=$*"; fi
  } > "$ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

write_kubeconfig() {  # write_kubeconfig FILE CERTNAME
  local file=$1 cert=$2
  put "$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: cairn-localkube
  cluster:
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
    server: https://$NODE_IP:$API_PORT
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 < "$PKI/$cert.key")
contexts:
- name: cairn-localkube
  context: {cluster: cairn-localkube, user: $cert}
current-context: cairn-localkube
KC
  chmod 600 "$file"
}

issue_ca() {  # issue_ca NAME CN
  local name=$1 cn=$2
  [ -f "$PKI/$name.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$name.key" -subj "/CN=$cn" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$PKI/$name.crt" 2>/dev/null
}

generate_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  issue_ca ca cairn-localkube-ca
  # The aggregation layer's front proxy has a CA of its own, as kubeadm sets it up: with the
  # cluster CA in --requestheader-client-ca-file, every client certificate was verified twice
  # per request (once as a would-be front proxy): 5 % of the API server's CPU under load.
  if [ ! -f "$PKI/front-proxy-ca.crt" ]; then rm -f "$PKI"/front-proxy-client.*; fi
  issue_ca front-proxy-ca cairn-localkube-front-proxy-ca
  issue_cert apiserver kube-apiserver "" serverAuth \
    "IP:$NODE_IP" "IP:$API_SERVICE_IP" IP:127.0.0.1 DNS:localhost DNS:kubernetes \
    DNS:kubernetes.default DNS:kubernetes.default.svc DNS:kubernetes.default.svc.cluster.local
  issue_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  CA=front-proxy-ca issue_cert front-proxy-client front-proxy-client "" clientAuth
  issue_cert admin cairn-admin system:masters clientAuth
  issue_cert controller-manager system:kube-controller-manager "" clientAuth
  issue_cert scheduler system:kube-scheduler "" clientAuth
  issue_cert kube-proxy system:kube-proxy "" clientAuth
  issue_cert kubelet "system:node:$NODE_NAME" system:nodes clientAuth
  issue_cert kubelet-serving "system:node:$NODE_NAME" system:nodes serverAuth \
    "IP:$NODE_IP" "DNS:$NODE_NAME"
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  write_kubeconfig "$KUBECONFIG_ADMIN" admin
  local c
  for c in controller-manager scheduler kube-proxy kubelet; do
    write_kubeconfig "$D/$c.kubeconfig" "$c"
  done
}
