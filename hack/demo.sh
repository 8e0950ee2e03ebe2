#!/usr/bin/env bash
# The demo, on the local cluster built from source (`make demo`, or `make demo-bad` for --bad):
#
#   1. installs the Helm chart charts/cairn: the operator in namespace cairn-demo-system, watching
#      only cairn-demo (a Role there, nothing cluster-wide but the CRDs);
#   2. trains the iris example (TrainingRun iris-1), which registers ModelVersion iris-v1; the
#      Model's gate (accuracy >= 0.9) validates it, `production` resolves to 1 and the
#      ModelDeployment iris serves it;
#   3. trains a second version (TrainingRun iris-2, other parameters) into iris-v2 and moves the
#      `production` alias to 2, which starts a canary rollout with no further manual step;
#   4. sends Open Inference Protocol requests to the Service while the canary runs and follows
#      it step by step until v2 is promoted.
#
# With --bad the second version is examples/iris/broken: it passes the gate (its metrics were
# measured before its bug) but answers every virginica row with a 500, so the canary's error rate
# fails the analysis and the rollout is rolled back, v1 serving throughout.
#
# With --store s3 (`make demo STORE=s3`) the models go to the local object store instead of the
# artifact claim: the bucket cairn-demo on SeaweedFS (hack/storage/up.sh), credentials in the
# namespace's Secret cairn-storage; the runs upload, the serving pods download through the node's
# model cache.
#
# Re-runnable: both namespaces are deleted and recreated each time. Exits non-zero, with the
# objects' state, Events and the operator's log, when any step does not happen in time.
set -Eeuo pipefail

mode=good
store=volume
while (($#)); do
  case "$1" in
    --bad) mode=bad ;;
    --store) store=${2:-}; shift ;;
    *) echo "usage: $0 [--bad] [--store volume|s3]" >&2; exit 2 ;;
  esac
  shift
done
case "$store" in volume | s3) ;; *) echo "--store: volume or s3, not '$store'" >&2; exit 2 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)
ns=cairn-demo                   # where the data scientist works: runs, models, deployments
operator_ns=cairn-demo-system   # where the platform team installs the operator
release=cairn                   # the chart's full name is then "cairn" (its Deployment)
mdep=iris
iris=$repo/examples/iris
bucket=cairn-demo
chart=${CAIRN_DEMO_CHART:-$repo/charts/cairn}   # another chart directory or package to try
second_dir=$iris/v2 second_run=iris-2
[ "$mode" = bad ] && second_dir=$iris/broken second_run=iris-2-broken

# Generous for a cold node, a few times what a warm run takes.
NAMESPACE_TIMEOUT=180
HELM_TIMEOUT=180
TRAIN_TIMEOUT=300
SERVE_TIMEOUT=180
ROLLOUT_TIMEOUT=300

# One row of each species. The broken v2 fails on the virginica row (its class 2).
ROWS=("5.1,3.5,1.4,0.2" "6.4,3.2,4.5,1.5" "6.7,3.0,5.2,2.3")

# shellcheck source=hack/demo-lib.sh
. "$repo/hack/demo-lib.sh"

# --- the demo's steps ---------------------------------------------------------------------------

# apply_examples DIR: the manifests as they are, or (--store s3) with each TrainingRun's
# spec.output.uri on the demo's bucket.
apply_examples() {
  if [ "$store" = s3 ]; then
    python3 "$repo/hack/storage/with_s3_output.py" "s3://$bucket/iris" "$1" | kn apply -f - | indent
  else
    kn apply -f "$1/" | indent
  fi
}

use_object_store() {
  [ "$store" = s3 ] || return 0
  step "the object store: bucket $bucket on SeaweedFS, credentials in Secret cairn-storage"
  local endpoint
  endpoint=$("$repo/hack/storage/up.sh")
  # The Secret a user would write, with the store's keys; the bucket made anew for each demo.
  python3 "$repo/hack/storage/demo_bucket.py" "$ns" "$bucket" "$endpoint" | indent
  say "runs upload to s3://$bucket/iris/<run>; serving pods download through the node's model cache"
}

train_first_version() {
  step "kubectl apply -n $ns -f examples/iris/   (ConfigMap, Model, TrainingRun iris-1, ModelDeployment)"
  apply_examples "$iris"
  say "training iris-1 in a pod (RandomForest, n_estimators 100)..."
  wait_for "TrainingRun iris-1 Succeeded" "$TRAIN_TIMEOUT" tr/iris-1 --for=condition=Succeeded
  wait_for "TrainingRun iris-1 Registered" 60 tr/iris-1 --for=condition=Registered
  wait_for "ModelVersion iris-v1 Ready (validated and approved)" 60 mv/iris-v1 --for=condition=Ready
  wait_for "the alias production resolving to 1" 60 model/iris \
    --for=jsonpath='{.status.aliases.production}'=1
  kn get tr,mv | indent
  say "artifact: $(kn get mv iris-v1 -o jsonpath='{.spec.artifact.uri} ({.spec.artifact.digest})')"
  say "gate: $(kn get mv iris-v1 -o jsonpath='{.status.gates[*].message}')"
}

serve_first_version() {
  step "ModelDeployment iris follows production: serving v1"
  serve_first 1 "$SERVE_TIMEOUT"
  if [ "$store" = s3 ]; then
    say "the serving pod: $(kn logs deployment/iris-stable | grep -m1 -o 's3://.*')"
  fi
}

train_second_version() {
  step "kubectl apply -n $ns -f examples/iris/${second_dir##*/}/   (TrainingRun $second_run)"
  apply_examples "$second_dir"
  if [ "$mode" = bad ]; then
    say "a LogisticRegression whose export bug drops the last class; its metrics were measured before the bug"
  else
    say "the same code with other params: n_estimators 30, max_depth 3"
  fi
  wait_for "TrainingRun $second_run Succeeded" "$TRAIN_TIMEOUT" "tr/$second_run" --for=condition=Succeeded
  wait_for "TrainingRun $second_run Registered" 60 "tr/$second_run" --for=condition=Registered
  wait_for "ModelVersion iris-v2 Ready (its gate passed)" 60 mv/iris-v2 --for=condition=Ready
  printf '   $ cairn versions iris -n %s\n' "$ns"
  cairn versions iris -n "$ns" | indent
  printf '   $ cairn lineage iris 2 -n %s\n' "$ns"
  cairn lineage iris 2 -n "$ns" | indent
}

move_alias() {
  step "traffic on, then production -> 2: the alias move alone starts the canary"
  start_traffic
  say "background loop (PID $traffic_pid): one request per new connection, ~15/s, the 3 species in turn"
  # The Model has no automatic promotion policy yet: a person (or Git) moves the pinned alias.
  printf "   \$ kubectl patch model iris --type=merge -p '{\"spec\":{\"aliases\":{\"production\":2}}}'\n"
  kn patch model iris --type=merge -p '{"spec":{"aliases":{"production":2}}}' | indent
  wait_for "the alias production resolving to 2" 60 model/iris \
    --for=jsonpath='{.status.aliases.production}'=2
}

rollout() {
  if [ "$mode" = bad ]; then
    step "the canary of v2, judged every 5s: errorRate max 0.05, latencyP99 max 0.5s (until rolled back)"
    follow_rollout rolledback 2
  else
    step "the canary of v2, judged every 5s: errorRate max 0.05, latencyP99 max 0.5s (until promoted)"
    follow_rollout promoted 2
  fi
  say "traffic during the rollout: $(answers)"
  stop_traffic
}

report_promoted() {
  step "v2 promoted"
  check_serving 2
  say "the ModelDeployment's Events:"
  kn get events --field-selector involvedObject.name=iris,involvedObject.kind=ModelDeployment \
    --sort-by=.lastTimestamp -o custom-columns=REASON:.reason,MESSAGE:.message --no-headers |
    tail -8 | sed 's/^/     /'
}

report_rolled_back() {
  step "v2 rolled back: offline metrics passed it, the canary caught it"
  say "Degraded: $(kn get mdep iris -o jsonpath='{range .status.conditions[?(@.type=="Degraded")]}{.status} {.reason}: {.message}{end}')"
  kn get events --field-selector reason=RolledBack -o custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message | indent
  check_serving 1
  say "production still names 2, which is not tried again until the target changes: point the"
  say "alias back at 1 to clear Degraded, or at the fixed version a new TrainingRun registers"
}

summary() {
  step "kubectl get cairn -n $ns"
  kn get cairn
  step "cairn status iris -n $ns"
  cairn status iris -n "$ns"
  look_around
}

main() {
  show_node
  fresh_namespaces
  use_object_store
  install_chart
  train_first_version
  serve_first_version
  train_second_version
  move_alias
  rollout
  if [ "$mode" = bad ]; then report_rolled_back; else report_promoted; fi
  summary
}

main
