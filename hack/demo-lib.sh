# What hack/demo.sh and hack/demo-loop.sh share: output, failure diagnostics, fresh namespaces,
# the chart, Open Inference Protocol traffic and following a canary rollout. Sourced, not run.
#
# The sourcing script sets, before calling anything here:
#   repo, ns, operator_ns, release, chart   where things live
#   mdep                                    the ModelDeployment (and the model name it serves)
#   ROWS                                    input rows, comma-separated FP64 features each
#   NAMESPACE_TIMEOUT HELM_TIMEOUT ROLLOUT_TIMEOUT   seconds
# shellcheck shell=bash disable=SC2154  # the variables above are the caller's

# shellcheck source=hack/localkube/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/localkube/lib.sh"
export KUBECONFIG=$KUBECONFIG_ADMIN

traffic_pid=
traffic_log=$(mktemp -t cairn-demo-traffic.XXXXXX)
url=

k() { "$K8S_BIN/kubectl" "$@"; }
kn() { k -n "$ns" "$@"; }
step() { printf '\n== [%3ss] %s\n' "$SECONDS" "$*"; }
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/   /'; }

# --- failure: say what did not happen, then show the state that explains why ----------------

diagnostics() {
  # Best effort: a command failing in here must not report itself again.
  trap - ERR
  set +e
  printf '\n---- kubectl get cairn,deployments,pods -n %s\n' "$ns"
  kn get cairn,deployments,pods -o wide
  printf '\n---- kubectl describe continuoustrainings,modeldeployments,models,trainingruns -n %s\n' "$ns"
  kn describe continuoustrainings,modeldeployments,models,trainingruns
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
  stop_traffic
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

# wait_until WHAT TIMEOUT COMMAND...: until COMMAND succeeds (polled each second).
wait_until() {
  local what=$1 timeout=$2 deadline; shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not happen within ${timeout}s"
    sleep 1
  done
}

# --- the cluster: fresh namespaces, the chart ----------------------------------------------

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
  # As a platform team would: every pod, the operator's and the ones it creates, must meet the
  # restricted Pod Security Standard, or the API server refuses it.
  k label namespace "$ns" "$operator_ns" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest >/dev/null
  say "both enforce the restricted Pod Security Standard (pod-security.kubernetes.io/enforce)"
  # There is no dynamic provisioner here: the claim cairn-artifacts binds a hostPath volume.
  artifacts_dir=$("$repo/hack/localkube/artifacts-claim.sh" "$ns")
  say "artifact store: claim cairn-artifacts in $ns on $artifacts_dir"
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
  "$helm" list -n "$operator_ns" | indent
  k -n "$operator_ns" get pods -o wide | indent
  say "RBAC: a Role in $ns only; nothing cluster-scoped but the CRDs"
}

show_node() {
  step "the node, and Cairn's images in its containerd"
  k get nodes -o wide
  ctr_ images ls -q 2>/dev/null | grep -E '^docker.io/cairn/' | indent
}

# --- traffic: Open Inference Protocol requests from this machine to the Service's ClusterIP ----
# (Pods reach it by name, http://<service>.<namespace>.svc:8080, through the cluster's DNS; this
# machine is not a pod and its resolver does not know cluster names.)

# infer URL ROW: one request on a new connection (kube-proxy balances connections, not
# requests, so a kept-alive connection would always reach the same pod); prints "CODE VERSION".
infer() {
  local body out code version=- commas=${2//[^,]/}
  body="{\"inputs\":[{\"name\":\"input-0\",\"shape\":[1,$((${#commas} + 1))],\"datatype\":\"FP64\",\"data\":[$2]}]}"
  out=$(curl -s --max-time 5 -H 'Connection: close' -H 'Content-Type: application/json' \
    -d "$body" -w '\n%{http_code}' "$1/v2/models/$mdep/infer") || out=$'\n000'
  code=${out##*$'\n'}
  [[ $out =~ \"model_version\":\"([^\"]*)\" ]] && version=${BASH_REMATCH[1]}
  echo "$code $version"
}

traffic_loop() {
  # A background subshell: nothing in here may end the demo, and errors are answers to count.
  trap - ERR EXIT
  set +e
  local i=0
  while :; do
    infer "$url" "${ROWS[i++ % ${#ROWS[@]}]}" >> "$traffic_log"
    sleep 0.05
  done
}

start_traffic() {
  : > "$traffic_log"
  traffic_loop &
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

# The demo rows shown one by one and checked after a rollout: the first SHOWN_ROWS (a demo that
# sends hundreds of rows as traffic shows a few).
shown_rows() { printf '%s\n' "${ROWS[@]:0:${SHOWN_ROWS:-${#ROWS[@]}}}"; }

# serve_first: once the ModelDeployment is Available, its Service answers the first row.
serve_first() {
  local version=$1 timeout=$2 row answer i
  wait_for "ModelDeployment $mdep Available (v$version serving)" "$timeout" "mdep/$mdep" \
    --for=condition=Available
  url=http://$(kn get service "$mdep" -o jsonpath='{.spec.clusterIP}'):8080
  say "Service $mdep at $url (its ClusterIP, from this machine; pods use http://$mdep.$ns.svc:8080)"
  # Available means a pod is ready; kube-proxy may take a moment more to route the ClusterIP.
  for i in $(seq 1 30); do
    answer=$(infer "$url" "${ROWS[0]}")
    [ "${answer%% *}" = 200 ] && break
    sleep 1
  done
  [ "${answer%% *}" = 200 ] || die "the Service $mdep at $url did not answer within 30s (last: $answer)"
  say "POST $url/v2/models/$mdep/infer, each demo row -> HTTP code, version:"
  while read -r row; do say "  [$row] -> $(infer "$url" "$row")"; done < <(shown_rows)
}

# After a rollout only one version answers: wait for the other track's pods to leave.
check_serving() {
  local version=$1 row answer i want rows
  mapfile -t rows < <(shown_rows)
  want="$((2 * ${#rows[@]})) x 200 from v$version"
  kn wait pod -l cairn.dev/track=canary --for=delete --timeout=60s >/dev/null 2>&1 || true
  for i in $(seq 1 60); do
    answer=$(for row in "${rows[@]}" "${rows[@]}"; do infer "$url" "$row"; done | sort | uniq -c |
      awk '{printf "%s%d x %s from v%s", sep, $1, $2, $3; sep = ", "}')
    [ "$answer" = "$want" ] && break
    sleep 1
  done
  say "$((2 * ${#rows[@]})) requests now (each row twice): $answer"
  [ "$answer" = "$want" ] || die "v$version alone is not answering: $answer"
}

# --- the rollout, as the ModelDeployment's status tells it -------------------------------------

STATUS_FIELDS='{.status.phase}|{.status.stable.version}|{.status.canary.version}|{.status.canary.weight}|{.status.canary.step}|{.status.canary.verdict}|{.status.canary.passedIntervals}|{.status.canary.failedIntervals}|{.status.canary.promoting}|{.status.rollback.version}|{.status.rollback.reason}'

step_action() {
  kn get mdep "$mdep" -o jsonpath="{.spec.strategy.canary.steps[$1]}" |
    sed -E 's/\{"setWeight":([0-9]+)\}/setWeight \1/; s/\{"pause":\{"duration":"([^"]+)"\}\}/pause \1/; s/\{"pause":\{\}\}/pause (until resumed)/'
}

# follow_rollout promoted|rolledback VERSION: one line each time the phase, step, weight or
# verdict changes, `cairn status` once the first interval is judged; fails on the other outcome.
follow_rollout() {
  local want=$1 target=$2 deadline=$((SECONDS + ROLLOUT_TIMEOUT)) last="" line shown=0 steps limit
  local fields phase stable canary weight index verdict passed failed promoting rb_version rb_reason
  steps=$(kn get mdep "$mdep" -o jsonpath='{range .spec.strategy.canary.steps[*]}{"x\n"}{end}' | wc -l)
  limit=$(kn get mdep "$mdep" -o jsonpath='{.spec.strategy.canary.analysis.failureLimit}')
  while ((SECONDS < deadline)); do
    # A failed read (the API server busy for a moment) is tried again, not a failed demo.
    fields=$(kn get mdep "$mdep" -o jsonpath="$STATUS_FIELDS" 2>/dev/null) || { sleep 1; continue; }
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
      printf '\n   $ cairn status %s -n %s   (the first judged interval)\n' "$mdep" "$ns"
      cairn status "$mdep" -n "$ns" | indent
      echo
    fi
    if [ "$want" = promoted ]; then
      [ "$rb_version" = "$target" ] && die "the canary of v$target was rolled back ($rb_reason), not promoted"
      [ "$stable" = "$target" ] && [ -z "$canary" ] && [ "$phase" = Available ] && return 0
    else
      [ "$stable" = "$target" ] && die "the bad v$target was promoted instead of rolled back"
      [ "$rb_version" = "$target" ] && return 0
    fi
    sleep 1
  done
  die "v$target was not $want within ${ROLLOUT_TIMEOUT}s"
}

# How to look around afterwards.
look_around() {
  # shellcheck disable=SC2016  # $PATH is for the reader's shell
  printf '\nDone in %ss. To look around:\nexport KUBECONFIG=%s\nexport PATH=%s:$PATH\n' \
    "$SECONDS" "$KUBECONFIG_ADMIN" "$K8S_BIN"
}
