#!/usr/bin/env bash
# The monitoring demo, on the local cluster built from source (`make demo-drift`):
#
#   1. installs the Helm chart, writes 400 labelled customers of examples/churn/data.py to a CSV
#      on the artifacts claim, and applies the churn Model, its ModelDeployment (with
#      spec.monitoring; windows shortened to 10 s for the demo) and the ContinuousTraining
#      examples/churn/drift/, which retrains only when the ModelDeployment's Drifted condition
#      becomes True; `cairn retrain` asks it for the first version, which is served;
#   2. sends requests like the training data: the windows say NoDrift;
#   3. the market changes: requests come from the shifted customers (data.py --shifted), and
#      their labelled outcomes land in the CSV, as a data pipeline would put them there; nothing
#      else is done: the windows say Drifted (naming the features), the ContinuousTraining starts
#      a run, the new version beats the old one on the same held-out rows, the promotion policy
#      moves production and the canary promotes it under the shifted traffic.
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

NAMESPACE_TIMEOUT=180
HELM_TIMEOUT=180
TRAIN_TIMEOUT=300
SERVE_TIMEOUT=180
DRIFT_TIMEOUT=120
ROLLOUT_TIMEOUT=300

# Requests: customers like those the first version learned from (filled in below); the first
# SHOWN_ROWS are shown one by one.
ROWS=()
SHOWN_ROWS=5

# shellcheck source=hack/demo-lib.sh
. "$repo/hack/demo-lib.sh"

customers() { "$python" "$churn/data.py" "$@" --no-labels; }
monitoring() {
  kn get mdep churn -o jsonpath='{.status.monitoring.verdict} {.status.monitoring.windows} {.status.monitoring.message}'
}

# wait_window VERDICT: until a window judged after now says VERDICT; prints the window.
wait_window() {
  local want=$1 since deadline=$((SECONDS + DRIFT_TIMEOUT)) verdict windows message
  since=$(kn get mdep churn -o jsonpath='{.status.monitoring.windows}')
  while ((SECONDS < deadline)); do
    read -r verdict windows message <<<"$(monitoring)"
    if [ "$verdict" = "$want" ] && ((${windows:-0} > ${since:-0})); then
      say "[${SECONDS}s] window #$windows: $verdict: $message"
      return 0
    fi
    sleep 1
  done
  die "no monitoring window said $want within ${DRIFT_TIMEOUT}s (last: $(monitoring))"
}

wait_run() {
  local run=$1 version=$2
  wait_until "the ContinuousTraining starting TrainingRun $run" 120 kn get tr "$run" -o name
  say "$run started: $(kn get tr "$run" -o jsonpath='{.metadata.annotations.cairn\.dev/trigger-reason}')"
  wait_for "TrainingRun $run Succeeded" "$TRAIN_TIMEOUT" "tr/$run" --for=condition=Succeeded
  wait_for "ModelVersion churn-v$version Ready" 60 "mv/churn-v$version" --for=condition=Ready
  wait_for "churn-v$version judged by the promotion policy" 60 "mv/churn-v$version" \
    --for=jsonpath='{.status.conditions[?(@.type=="Promoted")].reason}'
  say "churn-v$version Promoted=$(kn get mv "churn-v$version" -o jsonpath='{range .status.conditions[?(@.type=="Promoted")]}{.status} ({.reason}): {.message}{end}')"
}

first_version() {
  step "400 labelled customers -> the CSV; the churn Model, its monitored ModelDeployment, and a ContinuousTraining that retrains on drift"
  mkdir -p "$artifacts_dir/data"
  "$python" "$churn/data.py" 400 0 > "$artifacts_dir/data/churn.csv"
  kn apply -f "$churn/configmap.yaml" -f "$churn/model.yaml" -f "$churn/deployment.yaml" \
    -f "$churn/drift/continuoustraining.yaml" | indent
  printf "   \$ kubectl patch mdep churn --type merge -p '{\"spec\":{\"monitoring\":{\"window\":{\"duration\":\"10s\",\"minRows\":80}}}}'   (short windows for a demo)\n"
  kn patch mdep churn --type merge \
    -p '{"spec":{"monitoring":{"window":{"duration":"10s","minRows":80}}}}' | indent
  # The drift comes a minute after the first run: with the example's 1h it would wait an hour.
  printf "   \$ kubectl patch ct churn-on-drift --type merge -p '{\"spec\":{\"minInterval\":\"90s\"}}'   (a drift within 90 s of the last run waits for it)\n"
  kn patch ct churn-on-drift --type merge -p '{"spec":{"minInterval":"90s"}}' | indent
  printf '   $ cairn retrain churn-on-drift -n %s --reason "the first version"\n' "$ns"
  cairn retrain churn-on-drift -n "$ns" --reason "the first version" | indent
  wait_run churn-on-drift-request-1 1
  wait_for "the alias production resolving to 1" 60 model/churn \
    --for=jsonpath='{.status.aliases.production}'=1
  step "ModelDeployment churn serves v1"
  serve_first 1 "$SERVE_TIMEOUT"
}

steady() {
  step "traffic like the training data: each window is compared with v1's training data"
  start_traffic
  say "background loop (PID $traffic_pid): one customer per request, ~15/s"
  wait_window NoDrift
  wait_for "Drifted=False" 30 mdep/churn --for=condition=Drifted=False
}

market_changes() {
  step "the market changes: shifted customers ask, and their outcomes land in the CSV"
  stop_traffic
  mapfile -t ROWS < <(customers 300 12 --shifted)
  start_traffic
  say "requests now come from data.py --shifted (shorter tenure, higher charges, more calls)"
  printf '   $ python examples/churn/data.py 600 13 --shifted >> %s   (the data pipeline)\n' \
    "$artifacts_dir/data/churn.csv"
  "$python" "$churn/data.py" 600 13 --shifted >> "$artifacts_dir/data/churn.csv"
  wait_window Drifted
  say "Drifted: $(kn get mdep churn -o jsonpath='{range .status.conditions[?(@.type=="Drifted")]}{.status} {.reason}{end}')"
  printf '   features (test, statistic, drifted):\n'
  kn get mdep churn -o jsonpath='{range .status.monitoring.features[*]}{.name} {.test} {.statistic} {.drifted}{"\n"}{end}' |
    awk '{printf "     %-16s %-12s %-10s %s\n", $1, $2, $3, $4}'
}

retrained() {
  step "the ContinuousTraining retrains on the Drifted condition, with the new customers in the data"
  # v1 was trained less than minInterval ago: the drift waits for it, then starts the run.
  local waiting="" i
  for i in $(seq 1 20); do
    waiting=$(kn get ct churn-on-drift -o jsonpath='{.status.waiting}')
    [ -n "$waiting" ] || kn get tr churn-on-drift-condition-2 >/dev/null 2>&1 && break
    sleep 1
  done
  [ -z "$waiting" ] || say "[${SECONDS}s] status.waiting: $waiting"
  wait_run churn-on-drift-condition-2 2
  wait_for "the alias production moving to 2 by itself" 60 model/churn \
    --for=jsonpath='{.status.aliases.production}'=2
  step "the canary of v2, under the shifted traffic"
  follow_rollout promoted 2
  say "traffic during the rollout: $(answers)"
  stop_traffic
  check_serving 2
}

summary() {
  step "cairn history churn -n $ns"
  cairn history churn -n "$ns"
  step "kubectl get cairn -n $ns"
  kn get cairn
  look_around
}

main() {
  mapfile -t ROWS < <(customers 300 11)
  show_node
  fresh_namespaces
  install_chart
  first_version
  steady
  market_changes
  retrained
  summary
}

main
