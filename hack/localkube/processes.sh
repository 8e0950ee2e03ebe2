# Starting, waiting for and stopping the cluster's processes, always by the PID we recorded. Source it.
# shellcheck shell=bash

start_component() {  # start_component NAME BINARY ARGS...
  local name=$1 bin=$2; shift 2
  if [ -n "$(pid_of "$name")" ]; then
    log "$name already running"
    return 0
  fi
  log "starting $name"
  mkdir -p "$RUN" "$LOGS"
  printf '%s\n' "$bin" > "$RUN/$name.exe"
  # setsid: the process outlives this script and gets no signals meant for the caller's terminal.
  # nsenter puts it in the cluster's network namespace and then execs it: the PID stays the same.
  setsid nsenter --net="$CLUSTER_NETNS" "$bin" "$@" >> "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

# A component reads its configuration file once, at start. These record which content it started
# with, and which process that was, so that a changed file (a new setting on a running cluster)
# restarts it, once; a process started by another script (an older checkout) that wrote the
# file its own way, and left no stamp of its own, counts as changed.
_config_id() { printf '%s %s\n' "$(cat "$RUN/$1.pid" 2>/dev/null)" "$(sha256sum < "$2" | cut -c1-64)"; }
config_stamp() { _config_id "$1" "$2" > "$RUN/$1.config"; }

restart_if_config_changed() {  # restart_if_config_changed NAME FILE: stops it; the caller starts it
  local name=$1 file=$2
  [ -n "$(pid_of "$name")" ] || return 0
  if [ "$(cat "$RUN/$name.config" 2>/dev/null)" != "$(_config_id "$name" "$file")" ]; then
    log "$name: $file changed since it started: restarting it (running pods are kept)"
    stop_component "$name"
  fi
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local timeout=$1 what=$2 deadline; shift 2
  deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "timed out after ${timeout}s waiting for $what (logs: $LOGS)"
    fi
    sleep 0.5
  done
}

stop_component() {  # TERM, then KILL after a grace period; only the PID we recorded
  local name=$1 pid i
  pid=$(pid_of "$name")
  if [ -n "$pid" ]; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 40); do
      [ -d "/proc/$pid" ] || break
      sleep 0.25
    done
    [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid" "$RUN/$name.exe" "$RUN/$name.config"
}

# Our cgroup under each mounted v1 hierarchy (plus the named systemd one).
our_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CGROUP_ROOT" ] && echo "${h%/}$CGROUP_ROOT"
  done
  return 0
}

create_cgroups() {
  local h dir
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue  # skip the cgroup2 mount of the hybrid layout
    dir="${h%/}$CGROUP_ROOT"
    [ -d "$dir" ] || mkdir "$dir"
    # A new cpuset cgroup starts with no CPUs or memory nodes; inherit the parent's.
    if [ -f "$dir/cpuset.cpus" ] && [ -z "$(cat "$dir/cpuset.cpus")" ]; then
      cat "$h/cpuset.cpus" > "$dir/cpuset.cpus"
      cat "$h/cpuset.mems" > "$dir/cpuset.mems"
    fi
  done
}

# Every container process lives under our cgroup root, so this finds exactly ours.
kill_cgroup_processes() {
  local cg pid
  for cg in $(our_cgroups); do
    for pid in $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
}

remove_cgroups() {
  local cg
  for cg in $(our_cgroups); do
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

unmount_under() {  # unmounts every mount point below (and at) a directory, deepest first
  local dir=$1 m
  for m in $(findmnt -rn -o TARGET | grep -F "$dir" | sort -r); do
    case "$m" in "$dir"|"$dir"/*) umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true ;; esac
  done
}
