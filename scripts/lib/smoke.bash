# Sourced by scripts/smoke-wheel and scripts/smoke-clone (not run on its own): a clusterql server
# started in the background in a session of its own, the Admin token `serve --demo` prints, the
# checks of scripts/smoke_check.py, and the server stopped by its PID.

SMOKE_SERVER_PID=""
SMOKE_SERVER_LOG=""
SMOKE_STOP_TIMEOUT_S=15

smoke_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# smoke_start DIR LOG COMMAND...: runs COMMAND in DIR, stdin closed, output into LOG.
smoke_start() {
  local dir=$1 log=$2
  shift 2
  SMOKE_SERVER_LOG=$log
  # With job control on, the job gets a process group of its own whose id is its PID: the
  # server and anything it starts are stopped together.
  set -m
  (cd "$dir" && exec "$@") </dev/null >"$log" 2>&1 &
  SMOKE_SERVER_PID=$!
  set +m
  echo "started the server, PID $SMOKE_SERVER_PID (log: $log)"
}

# smoke_token TIMEOUT_S: prints the Admin token once the server has printed it.
smoke_token() {
  local timeout=$1 started=$SECONDS token
  while ((SECONDS - started < timeout)); do
    token=$(sed -n 's/^Admin token (shown only once): \(cql_[A-Za-z0-9_-]*\)$/\1/p' "$SMOKE_SERVER_LOG")
    if [[ -n "$token" ]]; then
      echo "$token"
      return 0
    fi
    if ! kill -0 "$SMOKE_SERVER_PID" 2>/dev/null; then
      echo "smoke: the server exited before it printed a token" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "smoke: no Admin token in the server's output after $timeout s" >&2
  return 1
}

# smoke_check URL TOKEN: the checks; on failure, the end of the server's log.
smoke_check() {
  if ! python3 "$(dirname "${BASH_SOURCE[0]}")/../smoke_check.py" "$@"; then
    echo "smoke: the end of the server's log:" >&2
    tail -n 40 "$SMOKE_SERVER_LOG" >&2 || true
    return 1
  fi
}

# smoke_stop: SIGTERM to the server's process group, SIGKILL after a while; fails if any of it
# is still there afterwards. Does nothing when no server was started.
smoke_stop() {
  local pid=$SMOKE_SERVER_PID killer
  [[ -n "$pid" ]] || return 0
  SMOKE_SERVER_PID=""
  kill -TERM -- "-$pid" 2>/dev/null || true
  (sleep "$SMOKE_STOP_TIMEOUT_S" && kill -KILL -- "-$pid" 2>/dev/null) &
  killer=$!
  wait "$pid" 2>/dev/null || true
  kill "$killer" 2>/dev/null || true
  wait "$killer" 2>/dev/null || true
  if kill -0 "$pid" 2>/dev/null || kill -0 -- "-$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "smoke: the server (PID $pid) or a process it started was still running: killed" >&2
    return 1
  fi
  echo "stopped the server (PID $pid): no process of it is left"
}

# smoke_clean_env: `env` arguments that drop every CLUSTERQL_* variable of this shell, so a
# developer's own settings (their database above all) never reach the server under test.
smoke_clean_env() {
  local name
  for name in $(compgen -e); do
    [[ "$name" == CLUSTERQL_* ]] && printf '%s\n' "-u" "$name"
  done
  return 0
}
