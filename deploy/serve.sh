#!/usr/bin/env bash
# `make serve`: the production layout on this machine (docs/deployment.md).
#
# Starts `dagster-daemon run` and `dagster-webserver -h 127.0.0.1` against
# PostgreSQL instance storage (deploy/dagster.yaml) and a PostgreSQL application
# database, creating both databases when they are missing and migrating the
# application database first. Ctrl-C (or SIGTERM) stops both: SIGINT to each
# process group, a bounded wait, then SIGKILL.
#
# Environment (defaults in brackets):
#   DAGSTER_PG_URL          instance storage [postgresql+psycopg2://postgres@127.0.0.1:5432/seriesgen_dagster]
#   SERIESGEN_DATABASE_URL  application database [postgresql://postgres@127.0.0.1:5432/seriesgen];
#                           a SQLite URL (the Makefile's default) is replaced by the default
#   DAGSTER_HOME            [.dagster_home_serve]; the Makefile's .dagster_home (the SQLite
#                           development instance) is replaced by it too
#   SERIESGEN_SERVE_PORT    webserver port [3000]
#   SERIESGEN_STOP_WAIT     seconds to wait after SIGINT before SIGKILL [20]
set -euo pipefail
# Started in the background by a shell without job control, this script finds SIGINT
# ignored: it could not trap it, and the Dagster processes would inherit the ignore
# (and then ignore SIGTERM too). Start again with the default disposition.
if [ -z "${SERIESGEN_SERVE_REEXEC:-}" ] && [ -r /proc/$$/status ] \
   && (( 0x$(awk '/^SigIgn:/ {print $2}' /proc/$$/status) & 2 )); then
  SERIESGEN_SERVE_REEXEC=1 exec env --default-signal=INT "$BASH" "$0" "$@"
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"

export DAGSTER_PG_URL="${DAGSTER_PG_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/seriesgen_dagster}"
DEFAULT_APP_URL="postgresql://postgres@127.0.0.1:5432/seriesgen"
case "${SERIESGEN_DATABASE_URL:-}" in
  "") SERIESGEN_DATABASE_URL="$DEFAULT_APP_URL" ;;
  sqlite*)
    echo "serve: SERIESGEN_DATABASE_URL is a SQLite URL; serve runs on PostgreSQL: using" \
         "$DEFAULT_APP_URL (set SERIESGEN_DATABASE_URL to a PostgreSQL URL to choose another)" >&2
    SERIESGEN_DATABASE_URL="$DEFAULT_APP_URL" ;;
esac
export SERIESGEN_DATABASE_URL
SERVE_HOME="$ROOT/.dagster_home_serve"
if [ -z "${DAGSTER_HOME:-}" ] || [ "$DAGSTER_HOME" = "$ROOT/.dagster_home" ]; then
  DAGSTER_HOME="$SERVE_HOME"
fi
export DAGSTER_HOME
PORT="${SERIESGEN_SERVE_PORT:-3000}"
STOP_WAIT="${SERIESGEN_STOP_WAIT:-20}"

mkdir -p "$DAGSTER_HOME"
if [ "$DAGSTER_HOME" = "$SERVE_HOME" ] || [ ! -e "$DAGSTER_HOME/dagster.yaml" ]; then
  cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
fi

# Both databases, created when missing (URLs are printed with the password masked).
"$BIN/python" - "$DAGSTER_PG_URL" "$SERIESGEN_DATABASE_URL" <<'PY'
import sys

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seriesgen_pipeline.persistence.db import normalize_url

for raw in sys.argv[1:]:
    url = make_url(normalize_url(raw))
    if url.get_backend_name() != "postgresql":
        sys.exit(f"serve: {url.render_as_string(hide_password=True)} is not a PostgreSQL URL")
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                 {"name": url.database}).first()
            if found is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
                print(f"serve: created database {url.render_as_string(hide_password=True)}")
    except sa.exc.OperationalError as exc:
        sys.exit(f"serve: cannot reach {url.render_as_string(hide_password=True)}: "
                 f"{str(exc.orig).strip().splitlines()[0]}")
    finally:
        admin.dispose()
PY
"$BIN/seriesgen" db upgrade

PIDS=()
stopping=0
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  echo "serve: stopping dagster-daemon and dagster-webserver" >&2
  for pid in "${PIDS[@]}"; do kill -INT -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 "$STOP_WAIT"); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  # Whatever is left of each group (code servers, run workers) goes too.
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# Job control: each background process leads its own process group (so it and its
# children can be signalled together) and keeps the default SIGINT disposition.
set -m
"$BIN/dagster-daemon" run -w workspace.yaml &
PIDS+=("$!")
"$BIN/dagster-webserver" -w workspace.yaml -h 127.0.0.1 -p "$PORT" &
PIDS+=("$!")
set +m
echo "serve: DAGSTER_HOME=$DAGSTER_HOME; UI on http://127.0.0.1:$PORT (Ctrl-C stops both)" >&2

# Until Ctrl-C, or until one of the two exits on its own (then the other is stopped).
set +e
wait -n "${PIDS[@]}"
status=$?
set -e
echo "serve: a process exited (status $status)" >&2
stop_all
exit "$status"
