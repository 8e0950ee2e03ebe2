#!/usr/bin/env bash
# The S3-compatible object store of the local cluster, for the tests and `make demo STORE=s3`:
# SeaweedFS (`weed server -s3`: master, volume server, filer and S3 gateway in one process),
# built from its Go module (build.sh, cached by version) into an image FROM scratch, run as the
# Deployment seaweedfs in the namespace cairn-storage behind the Service seaweedfs:8333, which
# pods reach by name: http://seaweedfs.cairn-storage.svc:8333 (cluster DNS).
#
# Requests are authenticated: the server's one identity has keys generated at the first run and
# kept in the Secret seaweedfs-s3 (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and s3.json, the
# server's configuration); anonymous requests are refused. Its data lives on the node under
# $CAIRN_LOCALKUBE_DIR/storage, so buckets survive restarts; telemetry is off.
#
# Idempotent: `make storage-up` (and the targets that need it) run it; it prints the endpoint.
#   hack/storage/up.sh           create or complete it, wait until it answers
#   hack/storage/up.sh --delete  remove it (and, with --purge, its data)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$LOCALKUBE_SRC/processes.sh"

if [ "${1:-}" = "--delete" ]; then
  kubectl_ delete namespace "$STORAGE_NAMESPACE" --ignore-not-found --wait=true >/dev/null
  [ "${2:-}" != "--purge" ] || rm -rf "$STORAGE_DATA"
  exit 0
fi

"$STORAGE_SRC/build.sh"
images=$STORAGE_SRC/../images
if ! ctr_ images ls -q 2>/dev/null | grep -xF "$SEAWEEDFS_IMAGE" >/dev/null; then
  tarball=$("$images/build.sh" --static "$SEAWEEDFS_IMAGE" "$SEAWEEDFS_BIN/weed")
  ctr_ images import "$tarball" >/dev/null
fi

# The server runs as 65532 (the image's user) and keeps its volumes here.
mkdir -p "$STORAGE_DATA"
chown 65532:65532 "$STORAGE_DATA"

kubectl_ get namespace "$STORAGE_NAMESPACE" >/dev/null 2>&1 || kubectl_ create namespace "$STORAGE_NAMESPACE" >/dev/null
if ! kubectl_ -n "$STORAGE_NAMESPACE" get secret "$STORAGE_SECRET" >/dev/null 2>&1; then
  log "object store: generating its credentials (Secret $STORAGE_NAMESPACE/$STORAGE_SECRET)"
  python3 - "$STORAGE_NAMESPACE" "$STORAGE_SECRET" <<'PY' | kubectl_ apply -f - >/dev/null
import json, secrets, string, sys
alphabet = string.ascii_uppercase + string.digits
key = "CAIRN" + "".join(secrets.choice(alphabet) for _ in range(15))
secret = secrets.token_urlsafe(30)
identities = {"identities": [{
    "name": "cairn",
    "credentials": [{"accessKey": key, "secretKey": secret}],
    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
}]}
print(json.dumps({
    "apiVersion": "v1", "kind": "Secret",
    "metadata": {"name": sys.argv[2], "namespace": sys.argv[1]},
    "stringData": {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "s3.json": json.dumps(identities),
    },
}))
PY
fi

kubectl_ apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $STORAGE_SERVICE
  namespace: $STORAGE_NAMESPACE
  labels: {app: $STORAGE_SERVICE}
spec:
  replicas: 1
  # One process owns the data directory: never two at once.
  strategy: {type: Recreate}
  selector: {matchLabels: {app: $STORAGE_SERVICE}}
  template:
    metadata:
      labels: {app: $STORAGE_SERVICE}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: seaweedfs
          image: $SEAWEEDFS_IMAGE
          imagePullPolicy: Never
          # -master.telemetry=false: the default reports to the project's public server.
          # No Iceberg or Lance listeners, no WebDAV, SFTP or message queue. Volumes of 128 MB
          # and as many as the disk holds: each bucket takes several.
          args:
            - server
            - -dir=/data
            - -ip=\$(POD_IP)
            - -ip.bind=0.0.0.0
            - -master.telemetry=false
            - -master.volumeSizeLimitMB=128
            - -volume.max=0
            - -filer
            - -s3
            - -s3.port=$S3_PORT
            - -s3.port.iceberg=0
            - -s3.port.lance=0
            # As S3 itself: writing to a bucket that does not exist is an error, not a new bucket.
            - -s3.autoCreateBucket=false
            - -s3.config=/etc/seaweedfs/s3.json
            - -filer.localSocket=/tmp/seaweedfs-filer.sock
            - -s3.localSocket=/tmp/seaweedfs-s3.sock
          env:
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
            # Go's collector works harder before the limit instead of the kernel killing it:
            # a 200 MB multipart upload, 8 parts at a time, passed 1 GiB once the filer had
            # grown its caches.
            - name: GOMEMLIMIT
              value: 1536MiB
          ports:
            - {name: s3, containerPort: $S3_PORT, protocol: TCP}
          readinessProbe:
            tcpSocket: {port: s3}
            periodSeconds: 2
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {memory: 2Gi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: data, mountPath: /data}
            - {name: config, mountPath: /etc/seaweedfs, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      # SIGTERM ends it cleanly in about 30 s.
      terminationGracePeriodSeconds: 45
      volumes:
        - name: data
          hostPath: {path: $STORAGE_DATA, type: Directory}
        - name: config
          secret: {secretName: $STORAGE_SECRET, items: [{key: s3.json, path: s3.json}]}
        - name: tmp
          emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: $STORAGE_SERVICE
  namespace: $STORAGE_NAMESPACE
  labels: {app: $STORAGE_SERVICE}
spec:
  selector: {app: $STORAGE_SERVICE}
  ports:
    - {name: s3, port: $S3_PORT, targetPort: s3, protocol: TCP}
YAML
kubectl_ -n "$STORAGE_NAMESPACE" rollout status "deployment/$STORAGE_SERVICE" --timeout=180s >/dev/null ||
  die "SeaweedFS did not become ready (kubectl -n $STORAGE_NAMESPACE logs deployment/$STORAGE_SERVICE)"

# Ready means the port listens; the S3 API answers once the filer has joined the master. From
# this machine (not a pod) the Service is reached by its ClusterIP.
ip=$(kubectl_ -n "$STORAGE_NAMESPACE" get service "$STORAGE_SERVICE" -o jsonpath='{.spec.clusterIP}')
answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$ip:$S3_PORT/")" = 403 ]; }
wait_for 120 "the S3 API of SeaweedFS (anonymous requests refused with 403)" answers
log "object store: SeaweedFS at $S3_ENDPOINT (from this machine: http://$ip:$S3_PORT);" \
  "keys in Secret $STORAGE_NAMESPACE/$STORAGE_SECRET"
echo "$S3_ENDPOINT"
