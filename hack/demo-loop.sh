#!/usr/bin/env bash
# The continuous-training demo, on the local cluster built from source (`make demo-loop`):
#
#   1. installs the Helm chart charts/cairn: the operator in namespace cairn-demo-system, watching
#      only cairn-demo;
#   2. writes 80 labelled rows of examples/churn/data.py to a CSV on the artifacts claim and
#      applies examples/churn/: the ContinuousTraining's first checks of the code and the dataset
#      start one run (churn-code-1) that trains v1, the Model's promotion policy gives it
#      `production` (nothing holds it yet), the ModelDeployment serves it;
#   3. with Open Inference Protocol traffic on the Service, appends 600 new labelled rows to the
#      CSV, and nothing else: the dataset trigger retrains (churn-dataset-2), the run scores v2 and
#      v1 on the same held-out rows, v2 is better on f1_macro, the alias moves by itself and the
#      canary promotes v2 under traffic;
#   4. asks for a retrain on the same data (`cairn retrain`): v3 is no better than v2, so it stays
#      registered with Promoted=False (NotBetter) and production does not move.
#
# Re-runnable: both namespaces are deleted and recreated each time. Exits non-zero, with the
# objects' state, Events and the operator's log, when any step does not happen in time.
set -Eeuo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
ns=cairn-demo
operator_ns=cairn-demo-system
release=cairn
mdep=churn
churn=$repo/examples/churn
chart=${CAIRN_DEMO_CHART:-$repo/charts/cairn}
python=${PYTHON:-$repo/.venv/bin/python}

# Generous for a cold node, a few times what a warm run takes.
NAMESPACE_TIMEOUT=180
HELM_TIMEOUT=180
TRIGGER_TIMEOUT=90
TRAIN_TIMEOUT=300
SERVE_TIMEOUT=180
ROLLOUT_TIMEOUT=300

# Three customers (the 8 features of data.py): loyal, at risk, in between.
ROWS=(
  "1.5,-0.8,-1.0,-0.9,1.2,0.3,0.8,-0.5"
  "-1.4,1.1,1.6,1.2,-1.1,-0.2,-0.9,1.0"
  "0.1,0.2,0.3,-0.1,0.0,0.5,-0.3,0.2"
)

# shellcheck source=hack/demo-lib.sh
. "$repo/hack/demo-lib.sh"

run_exists() { kn get tr "$1" -o name; }

# wait_run RUN VERSION: the run succeeds and registers churn-vVERSION, which passes its gate.
wait_run() {
  local run=$1 version=$2
  wait_until "the ContinuousTraining starting TrainingRun $run" "$TRIGGER_TIMEOUT" run_exists "$run"
  say "$run started: $(kn get tr "$run" -o jsonpath='{.metadata.annotations.cairn\.dev/trigger-reason}')"
  wait_for "TrainingRun $run Succeeded" "$TRAIN_TIMEOUT" "tr/$run" --for=condition=Succeeded
  wait_for "TrainingRun $run Registered" 60 "tr/$run" --for=condition=Registered
  wait_for "ModelVersion churn-v$version Ready (its gate passed)" 60 "mv/churn-v$version" \
    --for=condition=Ready
  wait_for "ModelVersion churn-v$version judged by the promotion policy" 60 "mv/churn-v$version" \
    --for=jsonpath='{.status.conditions[?(@.type=="Promoted")].reason}'
  say "churn-v$version Promoted=$(promoted "$version")"
}

promoted() {
  kn get mv "churn-v$1" -o jsonpath='{range .status.conditions[?(@.type=="Promoted")]}{.status} ({.reason}): {.message}{end}'
}

# --- the demo's steps ---------------------------------------------------------------------------

first_version() {
  step "80 labelled rows -> $artifacts_dir/data/churn.csv; kubectl apply -n $ns -f examples/churn/"
  mkdir -p "$artifacts_dir/data"
  "$python" "$churn/data.py" 80 0 > "$artifacts_dir/data/churn.csv"
  kn apply -f "$churn/" | indent
  say "the first checks of the code and of the CSV: one run trains on both..."
  wait_run churn-code-1 1
  wait_for "the alias production resolving to 1" 60 model/churn \
    --for=jsonpath='{.status.aliases.production}'=1
  printf '   $ cairn ct -n %s\n' "$ns"
  cairn ct -n "$ns" | indent
}

serve_first_version() {
  step "ModelDeployment churn follows production: serving v1"
  serve_first 1 "$SERVE_TIMEOUT"
}

new_data() {
  step "traffic on, then 600 new labelled rows appended to the CSV (and nothing else)"
  start_traffic
  say "background loop (PID $traffic_pid): one request per new connection, ~15/s, the 3 rows in turn"
  printf '   $ python examples/churn/data.py 600 1 >> %s\n' "$artifacts_dir/data/churn.csv"
  "$python" "$churn/data.py" 600 1 >> "$artifacts_dir/data/churn.csv"
  say "the dataset trigger notices the new digest and retrains on all 680 rows..."
  wait_run churn-dataset-2 2
  wait_for "the alias production moving to 2 by itself" 60 model/churn \
    --for=jsonpath='{.status.aliases.production}'=2
}

rollout() {
  step "the canary of v2, judged every 5s on the serving pods' error rate and latency"
  follow_rollout promoted 2
  say "traffic during the rollout: $(answers)"
  stop_traffic
  step "v2 promoted"
  check_serving 2
}

same_data_again() {
  step "cairn retrain churn --reason 'the same data again'   (a request, as CI would make it)"
  cairn retrain churn -n "$ns" --reason "the same data again" | indent
  wait_run churn-request-3 3
  [ "$(kn get model churn -o jsonpath='{.status.aliases.production}')" = 2 ] ||
    die "production moved away from 2 to a version that is not better"
  say "production still names 2"
}

summary() {
  step "cairn history churn -n $ns"
  cairn history churn -n "$ns"
  step "kubectl get cairn -n $ns"
  kn get cairn
  look_around
}

main() {
  show_node
  fresh_namespaces
  install_chart
  first_version
  serve_first_version
  new_data
  rollout
  same_data_again
  summary
}

main
