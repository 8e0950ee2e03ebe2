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
# Re-runnable: both namespaces are deleted and recreated each time. Exits non-zero, with the
# objects' state, Events and the operator's log, when any step does not happen in time.
set -Eeuo pipefail

mode=good
case "${1:-}" in
  "") ;;
  --bad) mode=bad ;;
  *) echo "usage: $0 [--bad]" >&2; exit 2 ;;
esac

# shellcheck source=hack/localkube/lib.sh
. "$(dirname "$0")/localkube/lib.sh"
export KUBECONFIG=$KUBECONFIG_ADMIN
repo=$(cd "$(dirname "$0")/.." && pwd)
ns=cairn-demo                   # where the data scientist works: runs, models, deployments
operator_ns=cairn-demo-system   # where the platform team installs the operator
release=cairn                   # the chart's full name is then "cairn" (its Deployment)
iris=$repo/examples/iris
chart=${CAIRN_DEMO_CHART:-$repo/charts/cairn}   # another chart directory or package to try
second_dir=$iris/v2 second_run=iris-2
[ "$mode" = bad ] && second_dir=$iris/broken second_run=iris-2-broken

# Generous for a cold node, a few times what a warm run takes.
NAMESPACE_TIMEOUT=180
HELM_TIMEOUT=180
TRAIN_TIMEOUT=300
SERVE_TIMEOUT=180
ROLLOUT_TIMEOUT=300

traffic_pid=
traffic_log=$(mktemp -t cairn-demo-traffic.XXXXXX)

k() { "$K8S_BIN/kubectl" "$@"; }
kn() { k -n "$ns" "$@"; }
step() { printf '\n== [%3ss] %s\n' "$SECONDS" "$*"; }
say() { printf '   %s\n' "$*"; }

# --- failure: say what did not happen, then show the state that explains why ----------------

diagnostics() {
  # Best effort: a command failing in here must not report itself again.
  trap - ERR
  set +e
  printf '\n---- kubectl get cairn,deployments,pods -n %s\n' "$ns"
  kn get cairn,deployments,pods -o wide
  printf '\n---- kubectl describe modeldeployments,models,trainingruns -n %s\n' "$ns"
  kn describe modeldeployments,models,trainingruns
  printf '\n---- Events in %s (the last 30)\n' "$ns"
  kn get events --sort-by=.lastTimestamp | tail -30
  printf '\n---- the operator: kubectl get pods,deployments -n %s\n' "$operator_ns"
  k -n "$operator_ns" get pods,deployments
  # A permission the chart does not grant stalls a reconcile without failing anything else.
  printf '\n---- the operator log: requests the API server refused (RBAC)\n'
  k -n "$operator_ns" logs "deployment/$release" | grep -o 'HTTP response body: .*"code":403' | sort | uniq -c
  printf '\n---- the operator log (the last 80 lines)\n'
  k -n "$operator_ns" logs "deployment/$release" --tail=80
  [ -s "$traffic_log" ] && printf '\n---- traffic: %s\n' "$(answers)"
}

die() {
  printf '\nFAILED after %ss: %s\n' "$SECONDS" "$*" >&2
  diagnostics >&2
  exit 1
}

# A command that fails outside die(): name it, then the same diagnostics.
on_error() {
  local status=$? line=$1 command=$2
  trap - ERR
  printf '\nFAILED after %ss: line %s exited %s: %s\n' "$SECONDS" "$line" "$status" "$command" >&2
  diagnostics >&2
  exit "$status"
}
trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR

cleanup() {
  # The background traffic loop, by the PID we recorded; nothing else.
  if [ -n "$traffic_pid" ] && kill -0 "$traffic_pid" 2>/dev/null; then
    kill "$traffic_pid" 2>/dev/null || true
    wait "$traffic_pid" 2>/dev/null || true
  fi
  rm -f "$traffic_log"
}
trap cleanup EXIT

# wait_for WHAT TIMEOUT kubectl-wait-args...: kubectl wait, and a clear message when it times out.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local out
  out=$(kn wait "$@" --timeout="${timeout}s" 2>&1) ||
    die "$what did not happen within ${timeout}s (kubectl wait $*: ${out##*$'\n'})"
}

# --- traffic: Open Inference Protocol requests from this machine to the Service's ClusterIP ----

# One row of each species. The broken v2 fails on the virginica row (its class 2).
ROWS=("5.1,3.5,1.4,0.2" "6.4,3.2,4.5,1.5" "6.7,3.0,5.2,2.3")

# infer URL ROW: one request on a new connection (kube-proxy balances connections, not
# requests, so a kept-alive connection would always reach the same pod); prints "CODE VERSION".
infer() {
  local body out code version=-
  body="{\"inputs\":[{\"name\":\"input-0\",\"shape\":[1,4],\"datatype\":\"FP64\",\"data\":[$2]}]}"
  out=$(curl -s --max-time 5 -H 'Connection: close' -H 'Content-Type: application/json' \
    -d "$body" -w '\n%{http_code}' "$1/v2/models/iris/infer") || out=$'\n000'
  code=${out##*$'\n'}
  [[ $out =~ \"model_version\":\"([^\"]*)\" ]] && version=${BASH_REMATCH[1]}
  echo "$code $version"
}

traffic_loop() {
  # A background subshell: nothing in here may end the demo, and errors are answers to count.
  trap - ERR EXIT
  set +e
  local url=$1 i=0
  while :; do
    infer "$url" "${ROWS[i++ % ${#ROWS[@]}]}" >> "$traffic_log"
    sleep 0.05
  done
}

start_traffic() {
  : > "$traffic_log"
  traffic_loop "$1" &
  traffic_pid=$!
}

stop_traffic() {
  [ -n "$traffic_pid" ] || return 0
  kill "$traffic_pid" 2>/dev/null || true
  wait "$traffic_pid" 2>/dev/null || true
  traffic_pid=
}

# The answers so far, for example "200 from v1: 120, 200 from v2: 95, 500: 31".
answers() {
  [ -s "$traffic_log" ] || { echo none; return 0; }
  awk '{ print ($1 == 200) ? "200 from v" $2 : ($1 == "000" ? "no answer" : $1) }' "$traffic_log" |
    sort | uniq -c |
    awk '{ n = $1; $1 = ""; printf "%s%s: %d", sep, substr($0, 2), n; sep = ", " } END { print "" }'
}

# --- the rollout, as the ModelDeployment's status tells it -------------------------------------

STATUS_FIELDS='{.status.phase}|{.status.stable.version}|{.status.canary.version}|{.status.canary.weight}|{.status.canary.step}|{.status.canary.verdict}|{.status.canary.passedIntervals}|{.status.canary.failedIntervals}|{.status.canary.promoting}|{.status.rollback.version}|{.status.rollback.reason}'

# follow_rollout promoted|rolledback: one line each time the phase, step, weight or verdict
# changes, `cairn status` once the first interval is judged; fails on the other outcome.
follow_rollout() {
  local want=$1 deadline=$((SECONDS + ROLLOUT_TIMEOUT)) last="" line shown=0 steps limit
  local fields phase stable canary weight index verdict passed failed promoting rb_version rb_reason
  steps=$(kn get mdep iris -o jsonpath='{range .spec.strategy.canary.steps[*]}{"x\n"}{end}' | wc -l)
  limit=$(kn get mdep iris -o jsonpath='{.spec.strategy.canary.analysis.failureLimit}')
  while ((SECONDS < deadline)); do
    # A failed read (the API server busy for a moment) is tried again, not a failed demo.
    fields=$(kn get mdep iris -o jsonpath="$STATUS_FIELDS" 2>/dev/null) || { sleep 1; continue; }
    IFS='|' read -r phase stable canary weight index verdict passed failed promoting \
      rb_version rb_reason <<<"$fields"
    line="$phase, stable v${stable:-?}"
    if [ -n "$canary" ]; then
      line+=", canary v$canary at ${weight:-0}%"
      if [ "$promoting" = true ]; then
        line+=", promoting (the stable is being updated to v$canary)"
      else
        line+=", step $((${index:-0} + 1))/$steps: $(step_action "${index:-0}")"
      fi
      [ -n "$verdict" ] && line+=", last interval $verdict (passed ${passed:-0}, failed ${failed:-0}/${limit:-2})"
    fi
    if [ "$line" != "$last" ]; then
      printf '   [%3ss] %s | traffic: %s\n' "$SECONDS" "$line" "$(answers)"
      last=$line
    fi
    if ((!shown)) && [ -n "$verdict" ] && [ "$verdict" != Inconclusive ]; then
      shown=1
      printf '\n   $ cairn status iris -n %s   (the first judged interval)\n' "$ns"
      cairn status iris -n "$ns" | sed 's/^/   /'
      echo
    fi
    if [ "$want" = promoted ]; then
      [ "$rb_version" = 2 ] && die "the canary of v2 was rolled back ($rb_reason), not promoted"
      [ "$stable" = 2 ] && [ -z "$canary" ] && [ "$phase" = Available ] && return 0
    else
      [ "$stable" = 2 ] && die "the bad v2 was promoted instead of rolled back"
      [ "$rb_version" = 2 ] && return 0
    fi
    sleep 1
  done
  die "v2 was not $want within ${ROLLOUT_TIMEOUT}s"
}

step_action() {
  kn get mdep iris -o jsonpath="{.spec.strategy.canary.steps[$1]}" |
    sed -E 's/\{"setWeight":([0-9]+)\}/setWeight \1/; s/\{"pause":\{"duration":"([^"]+)"\}\}/pause \1/; s/\{"pause":\{\}\}/pause (until resumed)/'
}

# --- the demo's steps ---------------------------------------------------------------------------

fresh_namespaces() {
  step "fresh namespaces: $ns (the models) and $operator_ns (the operator)"
  local n
  # The namespace controller waits as long as the longest grace period of the pods still running
  # when it starts (35s for a model server) before it looks again. Nothing an earlier demo
  # serves is needed: stop the pods first, at once, the operator's first (it would recreate the
  # model servers' Deployments), each namespace's controllers before their pods.
  for n in "$operator_ns" "$ns"; do
    k get namespace "$n" >/dev/null 2>&1 || continue
    k -n "$n" delete deployments,replicasets,jobs --all --wait=true --timeout=60s >/dev/null
    k -n "$n" delete pods --all --grace-period=1 --wait=true --timeout=60s >/dev/null
  done
  k delete namespace "$ns" "$operator_ns" --ignore-not-found --wait=true \
    --timeout="${NAMESPACE_TIMEOUT}s" >/dev/null ||
    die "the namespaces $ns and $operator_ns of an earlier run were not deleted within ${NAMESPACE_TIMEOUT}s"
  "$repo/hack/localkube/artifacts-claim.sh" --delete "$ns"
  k create namespace "$ns" >/dev/null
  k create namespace "$operator_ns" >/dev/null
  # There is no dynamic provisioner here: the claim cairn-artifacts binds a hostPath volume.
  say "artifact store: claim cairn-artifacts in $ns on $("$repo/hack/localkube/artifacts-claim.sh" "$ns")"
}

install_chart() {
  local helm
  helm=$("$repo/hack/helm/build.sh" --path)
  step "helm upgrade --install $release ${chart#"$repo/"} -n $operator_ns --set watchNamespaces={$ns}"
  # --take-ownership: the CRDs are cluster-wide and may already belong to another release
  # (the tests install the chart too) or to `make install-crds`; the chart adopts them.
  # pullPolicy Never: the image is only in the node's containerd (`make images`).
  "$helm" upgrade --install "$release" "$chart" --namespace "$operator_ns" \
    --set "watchNamespaces={$ns}" --set image.pullPolicy=Never --take-ownership \
    --wait --timeout "${HELM_TIMEOUT}s" >/dev/null ||
    die "helm upgrade --install failed (its error is above; --wait allows ${HELM_TIMEOUT}s for the operator to be Ready)"
  k wait --for=condition=Established crd -l "app.kubernetes.io/instance=$release" \
    --timeout=60s >/dev/null
  "$helm" list -n "$operator_ns" | sed 's/^/   /'
  k -n "$operator_ns" get pods -o wide | sed 's/^/   /'
  say "RBAC: a Role in $ns only; nothing cluster-scoped but the CRDs"
}

train_first_version() {
  step "kubectl apply -n $ns -f examples/iris/   (ConfigMap, Model, TrainingRun iris-1, ModelDeployment)"
  kn apply -f "$iris/" | sed 's/^/   /'
  say "training iris-1 in a pod (RandomForest, n_estimators 100)..."
  wait_for "TrainingRun iris-1 Succeeded" "$TRAIN_TIMEOUT" tr/iris-1 --for=condition=Succeeded
  wait_for "TrainingRun iris-1 Registered" 60 tr/iris-1 --for=condition=Registered
  wait_for "ModelVersion iris-v1 Ready (validated and approved)" 60 mv/iris-v1 --for=condition=Ready
  wait_for "the alias production resolving to 1" 60 model/iris \
    --for=jsonpath='{.status.aliases.production}'=1
  kn get tr,mv | sed 's/^/   /'
  say "gate: $(kn get mv iris-v1 -o jsonpath='{.status.gates[*].message}')"
}

serve_first_version() {
  step "ModelDeployment iris follows production: serving v1"
  wait_for "ModelDeployment iris Available (v1 serving)" "$SERVE_TIMEOUT" mdep/iris \
    --for=condition=Available
  ip=$(kn get service iris -o jsonpath='{.spec.clusterIP}')
  url=http://$ip:8080
  say "Service iris at $url (ClusterIP: there is no cluster DNS on this machine)"
  # Available means a pod is ready; kube-proxy may take a moment more to route the ClusterIP.
  local row answer i
  for i in $(seq 1 30); do
    answer=$(infer "$url" "${ROWS[0]}")
    [ "${answer%% *}" = 200 ] && break
    sleep 1
  done
  [ "${answer%% *}" = 200 ] || die "the Service iris at $url did not answer within 30s (last: $answer)"
  say "POST $url/v2/models/iris/infer, one row of each species -> HTTP code, version:"
  for row in "${ROWS[@]}"; do say "  [$row] -> $(infer "$url" "$row")"; done
}

train_second_version() {
  step "kubectl apply -n $ns -f examples/iris/${second_dir##*/}/   (TrainingRun $second_run)"
  kn apply -f "$second_dir/" | sed 's/^/   /'
  if [ "$mode" = bad ]; then
    say "a LogisticRegression whose export bug drops the last class; its metrics were measured before the bug"
  else
    say "the same code with other params: n_estimators 30, max_depth 3"
  fi
  wait_for "TrainingRun $second_run Succeeded" "$TRAIN_TIMEOUT" "tr/$second_run" --for=condition=Succeeded
  wait_for "TrainingRun $second_run Registered" 60 "tr/$second_run" --for=condition=Registered
  wait_for "ModelVersion iris-v2 Ready (its gate passed)" 60 mv/iris-v2 --for=condition=Ready
  printf '   $ cairn versions iris -n %s\n' "$ns"
  cairn versions iris -n "$ns" | sed 's/^/   /'
  printf '   $ cairn lineage iris 2 -n %s\n' "$ns"
  cairn lineage iris 2 -n "$ns" | sed 's/^/   /'
}

move_alias() {
  step "traffic on, then production -> 2: the alias move alone starts the canary"
  start_traffic "$url"
  say "background loop (PID $traffic_pid): one request per new connection, ~15/s, the 3 species in turn"
  # The Model has no automatic promotion policy yet: a person (or Git) moves the pinned alias.
  printf "   \$ kubectl patch model iris --type=merge -p '{\"spec\":{\"aliases\":{\"production\":2}}}'\n"
  kn patch model iris --type=merge -p '{"spec":{"aliases":{"production":2}}}' | sed 's/^/   /'
  wait_for "the alias production resolving to 2" 60 model/iris \
    --for=jsonpath='{.status.aliases.production}'=2
}

rollout() {
  if [ "$mode" = bad ]; then
    step "the canary of v2, judged every 5s: errorRate max 0.05, latencyP99 max 0.5s (until rolled back)"
    follow_rollout rolledback
  else
    step "the canary of v2, judged every 5s: errorRate max 0.05, latencyP99 max 0.5s (until promoted)"
    follow_rollout promoted
  fi
  say "traffic during the rollout: $(answers)"
  stop_traffic
}

# After the rollout only one version answers: wait for the other track's pods to leave.
check_serving() {
  local version=$1 row answer i
  k -n "$ns" wait pod -l cairn.dev/track=canary --for=delete --timeout=60s >/dev/null 2>&1 || true
  for i in $(seq 1 60); do
    answer=$(for row in "${ROWS[@]}" "${ROWS[@]}"; do infer "$url" "$row"; done | sort | uniq -c |
      awk '{printf "%s%d x %s from v%s", sep, $1, $2, $3; sep = ", "}')
    [ "$answer" = "6 x 200 from v$version" ] && break
    sleep 1
  done
  say "6 requests now (2 per species): $answer"
  [ "$answer" = "6 x 200 from v$version" ] || die "v$version alone is not answering: $answer"
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
  kn get events --field-selector reason=RolledBack -o custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message | sed 's/^/   /'
  check_serving 1
  say "production still names 2, which is not tried again until the target changes: point the"
  say "alias back at 1 to clear Degraded, or at the fixed version a new TrainingRun registers"
}

summary() {
  step "kubectl get cairn -n $ns"
  kn get cairn
  step "cairn status iris -n $ns"
  cairn status iris -n "$ns"
  # shellcheck disable=SC2016  # $PATH is for the reader's shell
  printf '\nDone in %ss. To look around:\nexport KUBECONFIG=%s\nexport PATH=%s:$PATH\n' \
    "$SECONDS" "$KUBECONFIG_ADMIN" "$K8S_BIN"
}

main() {
  step "the node, and Cairn's images in its containerd"
  k get nodes -o wide
  ctr_ images ls -q 2>/dev/null | grep -E '^docker.io/cairn/' | sed 's/^/   /'
  fresh_namespaces
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
