# shellcheck shell=bash
# Açık Kapı — shared helpers for scripts/setup, scripts/run and scripts/test.
#
# Source this file; do not execute it:   source "$(dirname "$0")/lib.sh"
#
# Every function is idempotent: calling it again when the work is already done
# only re-checks and returns quickly. Nothing here relies on systemd (there may
# be no init system at all), so services are started directly.
#
# Environment knobs (all optional):
#   AK_PYTHON           Python used to create the venv (default: python3 from PATH, must be >= 3.11)
#   TEST_DATABASE_URL   PostgreSQL test database
#                       (default: postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_test)
#
# The role/password "acikkapi"/"acikkapi" are local development and test
# defaults only; never use them for a real deployment.

set -euo pipefail

# --- basics -----------------------------------------------------------------

AK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AK_VENV="$AK_ROOT/.venv"
AK_DEFAULT_TEST_DATABASE_URL="postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_test"

# Debian packages every setup needs. Kept minimal on purpose:
#   ca-certificates  pip is configured to verify TLS against the system CA bundle.
# Installed only when actually needed (see ak_venv):
#   python3-venv                          when `python3 -m venv` does not work yet
#   python3-dev build-essential libpq-dev when pip has to build something from source
#                                         (normally not: psycopg[binary] and the other
#                                         dependencies ship wheels)
# git is not listed: the checkout already exists and nothing at runtime calls git.
AK_BASE_PACKAGES=(ca-certificates)
AK_BUILD_PACKAGES=(python3-dev build-essential libpq-dev)

# Name of the calling script, used in log lines: "[acikkapi] test: ..."
AK_SCRIPT_NAME="$(basename "${0:-acikkapi}")"

ak_log() { printf '[acikkapi] %s: %s\n' "$AK_SCRIPT_NAME" "$*"; }
ak_warn() { printf '[acikkapi] %s: WARNING: %s\n' "$AK_SCRIPT_NAME" "$*" >&2; }
ak_die() {
    printf '[acikkapi] %s: ERROR: %s\n' "$AK_SCRIPT_NAME" "$*" >&2
    exit 1
}

# ak_root — print the repository root.
ak_root() { printf '%s\n' "$AK_ROOT"; }

ak_have() { command -v "$1" >/dev/null 2>&1; }

ak_is_root() { [ "$(id -u)" -eq 0 ]; }

# ak_port_open HOST PORT — true when something accepts TCP connections there.
ak_port_open() {
    local py
    py="$(ak_python_cmd 2>/dev/null || echo python3)"
    "$py" - "$1" "$2" <<'PY' >/dev/null 2>&1
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2):
    pass
PY
}

# --- Debian packages -------------------------------------------------------

# ak_apt_install PKG... — install only the packages that are not installed yet.
# `apt-get update` runs at most once per script run (the flag is exported so
# child scripts started from the same run reuse it), and only when something
# is actually missing.
ak_apt_install() {
    local pkg status missing=()
    for pkg in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        if [ "$status" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! ak_is_root; then
        ak_die "these Debian packages are needed but not installed: ${missing[*]}
    install them as root:  apt-get install -y ${missing[*]}
    (or re-run this script as root)"
    fi
    ak_have apt-get || ak_die "apt-get not found; install by hand: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [ "${AK_APT_UPDATED:-0}" != 1 ]; then
        ak_log "apt-get update"
        apt-get -o DPkg::Lock::Timeout=300 update -qq
        export AK_APT_UPDATED=1
    fi
    ak_log "apt-get install ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
}

# --- Python virtualenv -----------------------------------------------------

# ak_python_cmd — print the base interpreter (AK_PYTHON or python3 from PATH).
ak_python_cmd() {
    local py="${AK_PYTHON:-python3}"
    ak_have "$py" || return 1
    command -v "$py"
}

# ak_python_ok PY — true when PY runs and is Python >= 3.11.
ak_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

# ak_install_stamp — sha256 of the packaging metadata that decides what pip installs.
ak_install_stamp() {
    local f
    for f in setup.cfg pyproject.toml; do
        if [ -f "$AK_ROOT/$f" ]; then
            printf '== %s\n' "$f"
            cat "$AK_ROOT/$f"
        fi
    done | sha256sum | cut -d' ' -f1
}

# ak_venv_activate — put the project venv first on PATH (no install work).
ak_venv_activate() {
    [ -x "$AK_VENV/bin/python" ] || ak_die "no virtualenv at $AK_VENV; run scripts/setup first"
    export VIRTUAL_ENV="$AK_VENV"
    case ":$PATH:" in
        *":$AK_VENV/bin:"*) ;;
        *) export PATH="$AK_VENV/bin:$PATH" ;;
    esac
    # Never prompt (CI has no stdin) and keep pip quiet about its own version.
    export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
}

# ak_venv — create $ROOT/.venv when missing, (re)install the project in
# editable mode with the [test] extra when setup.cfg/pyproject.toml changed
# since the last successful install, and activate it.
ak_venv() {
    local py stamp_file="$AK_VENV/.acikkapi-install-stamp" want have=""
    py="$(ak_python_cmd)" || ak_die "python3 not found on PATH (Python >= 3.11 is required)"
    ak_python_ok "$py" || ak_die "$py is $("$py" -V 2>&1); Python >= 3.11 is required"

    # A venv whose interpreter no longer runs (e.g. base Python removed) is rebuilt.
    if [ -e "$AK_VENV" ] && ! ak_python_ok "$AK_VENV/bin/python"; then
        ak_warn "existing $AK_VENV is broken or too old; recreating it"
        rm -rf "$AK_VENV"
    fi

    if [ ! -e "$AK_VENV" ]; then
        ak_log "creating virtualenv $AK_VENV with $py ($("$py" -V 2>&1))"
        if ! "$py" -m venv "$AK_VENV" >/dev/null 2>&1; then
            # Debian's python3 needs python3-venv (ensurepip) for this.
            rm -rf "$AK_VENV"
            ak_log "'$py -m venv' does not work yet; installing python3-venv"
            ak_apt_install python3-venv
            "$py" -m venv "$AK_VENV" || {
                rm -rf "$AK_VENV"
                ak_die "could not create the virtualenv with $py"
            }
        fi
        ak_venv_activate
        ak_log "upgrading pip in the new virtualenv"
        python -m pip install --quiet --upgrade pip
    fi
    ak_venv_activate

    want="$(ak_install_stamp)"
    [ -f "$stamp_file" ] && have="$(cat "$stamp_file")"
    if [ "$want" = "$have" ]; then
        ak_log "project already installed in .venv (setup.cfg/pyproject.toml unchanged)"
        return 0
    fi

    ak_log "pip install -e '.[test]' (packaging metadata changed or first install)"
    if ! python -m pip install --quiet -e "$AK_ROOT[test]"; then
        # Most likely a dependency without a wheel for this platform: get a
        # compiler and headers, then try once more.
        ak_warn "pip install failed; installing build tools (${AK_BUILD_PACKAGES[*]}) and retrying"
        ak_apt_install "${AK_BUILD_PACKAGES[@]}"
        python -m pip install --quiet -e "$AK_ROOT[test]" \
            || ak_die "pip install -e '.[test]' failed (see the pip output above)"
    fi
    printf '%s\n' "$want" >"$stamp_file"
    ak_log "project installed; stamp written to ${stamp_file#"$AK_ROOT"/}"
}

# --- PostgreSQL (tests) ----------------------------------------------------

# ak_pg_url_parts URL — print user, password, host, port, dbname (one per
# line) of a SQLAlchemy/libpq URL.
ak_pg_url_parts() {
    python3 - "$1" <<'PY'
import sys
from urllib.parse import unquote, urlsplit
u = urlsplit(sys.argv[1])
print(unquote(u.username or ""))
print(unquote(u.password or ""))
print(u.hostname or "127.0.0.1")
print(u.port or 5432)
print(unquote(u.path.lstrip("/")))
PY
}

# ak_libpq_url URL — drop the SQLAlchemy driver suffix ("+psycopg") so psql accepts it.
ak_libpq_url() { printf '%s\n' "$1" | sed -E 's#^postgresql\+[a-z0-9_]+://#postgresql://#'; }

# ak_pg_ready HOST PORT — true when a PostgreSQL server accepts connections.
ak_pg_ready() {
    if ak_have pg_isready; then
        pg_isready -q -h "$1" -p "$2" -t 2
    else
        ak_port_open "$1" "$2"
    fi
}

# ak_pg_check_url URL — true when URL connects and runs a query.
ak_pg_check_url() {
    local url
    url="$(ak_libpq_url "$1")"
    if ak_have psql; then
        PGCONNECT_TIMEOUT=5 psql -X -q -At "$url" -c 'select 1' >/dev/null 2>&1
    elif [ -x "$AK_VENV/bin/python" ]; then
        "$AK_VENV/bin/python" -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=5).close()' \
            "$url" >/dev/null 2>&1
    else
        return 1
    fi
}

# ak_pg_superuser_psql ARGS... — psql as the postgres OS user over the local socket.
# (cd / first: the postgres user usually cannot read the checkout directory.)
ak_pg_superuser_psql() {
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p 5432 "$@")
}

# ak_pg_can_superuser — true when we may act as the postgres OS user on the
# server listening on port 5432 of this machine.
ak_pg_can_superuser() {
    ak_is_root && id postgres >/dev/null 2>&1 && ak_have psql \
        && ak_pg_superuser_psql -At -c 'select 1' >/dev/null 2>&1
}

# ak_pg_start_local_cluster — start (creating if needed) a Debian cluster on port 5432.
ak_pg_start_local_cluster() {
    local ver name line
    ak_apt_install postgresql   # Debian 12: PostgreSQL 15
    ak_have pg_lsclusters || ak_die "pg_lsclusters missing even though postgresql is installed"

    # Cluster already configured for port 5432? (columns: ver cluster port status ...)
    line="$(pg_lsclusters --no-header 2>/dev/null | awk '$3 == 5432 { print $1, $2; exit }')"
    if [ -z "$line" ]; then
        ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1)"
        [ -n "$ver" ] || ak_die "no PostgreSQL server binaries found under /usr/lib/postgresql"
        name=main
        if pg_lsclusters --no-header 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
            name=acikkapi   # "main" exists but uses another port; do not touch it
        fi
        ak_log "creating PostgreSQL $ver cluster '$name' on port 5432 (UTF-8)"
        pg_createcluster --port 5432 --encoding UTF8 --locale C.UTF-8 "$ver" "$name" >/dev/null
    else
        read -r ver name <<<"$line"
    fi

    ak_log "starting PostgreSQL cluster $ver/$name"
    pg_ctlcluster "$ver" "$name" start || true   # "already running" is fine; readiness is checked below

    local i
    for i in $(seq 1 30); do
        ak_pg_ready 127.0.0.1 5432 && return 0
        sleep 1
    done
    ak_die "PostgreSQL $ver/$name did not become ready within 30 s; see /var/log/postgresql/postgresql-$ver-$name.log"
}

# ak_pg_provision USER PASSWORD DB... — create the login role and databases if missing.
ak_pg_provision() {
    local user="$1" pass="$2" db
    shift 2
    ak_log "ensuring role '$user' and databases: $*"
    # \gexec runs the generated statement only when the WHERE clause finds
    # nothing, which makes this safe to repeat. psql variables (:'x', :"x")
    # quote the values correctly.
    ak_pg_superuser_psql -v u="$user" -v pw="$pass" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u')
\gexec
SQL
    for db in "$@"; do
        ak_pg_superuser_psql -v u="$user" -v db="$db" <<'SQL' >/dev/null
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L',
              :'db', :'u', 'UTF8', 'C.UTF-8', 'C.UTF-8')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL
    done
}

# ak_postgres_up — make sure the PostgreSQL test database is reachable.
# Exports TEST_DATABASE_URL.
ak_postgres_up() {
    export TEST_DATABASE_URL="${TEST_DATABASE_URL:-$AK_DEFAULT_TEST_DATABASE_URL}"
    local parts user pass host port db
    mapfile -t parts < <(ak_pg_url_parts "$TEST_DATABASE_URL")
    [ "${#parts[@]}" -eq 5 ] && [ -n "${parts[0]}" ] && [ -n "${parts[4]}" ] \
        || ak_die "TEST_DATABASE_URL must look like postgresql+psycopg://USER:PASSWORD@HOST:PORT/DBNAME"
    user="${parts[0]}" pass="${parts[1]}" host="${parts[2]}" port="${parts[3]}" db="${parts[4]}"
    local shown="$TEST_DATABASE_URL"
    [ -n "$pass" ] && shown="${TEST_DATABASE_URL/:$pass@/:***@}"   # never print the password

    case "$host:$port" in
        127.0.0.1:5432 | localhost:5432) ;;
        *)
            # Someone else's server: we only check it.
            ak_log "TEST_DATABASE_URL points at $host:$port; not managing a local server"
            ak_pg_check_url "$TEST_DATABASE_URL" \
                || ak_die "cannot connect to TEST_DATABASE_URL=$shown"
            ak_log "PostgreSQL test database reachable: $shown"
            return 0
            ;;
    esac

    if ak_pg_ready 127.0.0.1 5432; then
        ak_log "PostgreSQL already answers on 127.0.0.1:5432"
    else
        ak_log "no PostgreSQL on 127.0.0.1:5432; starting a local one"
        ak_pg_start_local_cluster
    fi

    if ak_pg_can_superuser; then
        ak_pg_provision "$user" "$pass" acikkapi "$db"
    elif ! ak_pg_check_url "$TEST_DATABASE_URL"; then
        ak_die "a PostgreSQL server answers on 127.0.0.1:5432 but it is not one we can administer
    (not root, or no local 'postgres' OS user/socket), and TEST_DATABASE_URL does not connect:
        $shown
    Create the role and database on that server, e.g.
        CREATE ROLE $user LOGIN CREATEDB PASSWORD '...';
        CREATE DATABASE $db OWNER $user;
    or point TEST_DATABASE_URL at a database you can use."
    fi

    ak_pg_check_url "$TEST_DATABASE_URL" \
        || ak_die "PostgreSQL is up but TEST_DATABASE_URL does not connect: $shown"
    ak_log "PostgreSQL test database ready: $shown"
}

# --- Redis -------------------------------------------------------------------

AK_REDIS_DIR="$AK_ROOT/instance/redis"

# ak_redis_ping — true when a Redis answers PING on 127.0.0.1:6379.
ak_redis_ping() {
    if ak_have redis-cli; then
        [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
    else
        python3 - <<'PY' >/dev/null 2>&1
import socket, sys
with socket.create_connection(("127.0.0.1", 6379), timeout=2) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)
PY
    fi
}

# ak_redis_up — make sure Redis answers on 127.0.0.1:6379, starting a
# project-owned, append-only-file persisted redis-server if needed. Its data,
# pid and log file live in $ROOT/instance/redis.
ak_redis_up() {
    if ak_redis_ping; then
        ak_log "Redis already answers on 127.0.0.1:6379"
        return 0
    fi
    ak_apt_install redis-server
    # On a machine with an init system the package may have started its own
    # Redis on 6379; if so, use that one.
    if ak_redis_ping; then
        ak_log "Redis answers on 127.0.0.1:6379 (started by the package)"
        return 0
    fi
    if ak_port_open 127.0.0.1 6379; then
        ak_die "something else listens on 127.0.0.1:6379 but does not answer Redis PING"
    fi

    mkdir -p "$AK_REDIS_DIR"
    ak_log "starting project Redis (data, log and pid in instance/redis/)"
    redis-server \
        --appendonly yes --appendfsync everysec \
        --bind 127.0.0.1 --port 6379 \
        --dir "$AK_REDIS_DIR" \
        --daemonize yes \
        --pidfile "$AK_REDIS_DIR/redis.pid" \
        --logfile "$AK_REDIS_DIR/redis.log"

    local i
    for i in $(seq 1 30); do
        if ak_redis_ping; then
            ak_log "Redis ready on 127.0.0.1:6379 (pid $(cat "$AK_REDIS_DIR/redis.pid" 2>/dev/null || echo '?'))"
            return 0
        fi
        sleep 1
    done
    ak_die "Redis did not answer within 30 s; see $AK_REDIS_DIR/redis.log"
}

# --- Asterisk ------------------------------------------------------------------

# ak_asterisk_up [start|nostart] — provision Asterisk (a system Asterisk >= 20, or a
# private Debian sid root built once with debootstrap at ACIKKAPI_ASTERISK_ROOT, default
# /var/cache/acikkapi/asterisk-sid, cached across runs), install the prompts, render the
# configuration from asterisk-conf/ and dialplan/ into the instance folder, and, with
# "start" (the default), start it or reload a running one. Needs the venv (ak_venv) and
# root for the first build. Every listener is bound to 127.0.0.1.
ak_asterisk_up() {
    local mode="${1:-start}"
    ak_venv_activate
    ak_log "acikkapi asterisk install"
    acikkapi asterisk install
    ak_log "acikkapi asterisk render"
    acikkapi asterisk render
    if [ "$mode" != start ]; then
        return 0
    fi
    if acikkapi asterisk status >/dev/null 2>&1; then
        ak_log "Asterisk already running; reloading the configuration"
        acikkapi asterisk reload >/dev/null
    else
        ak_log "acikkapi asterisk start"
        acikkapi asterisk start
    fi
}

# --- application processes -------------------------------------------------------

AK_RUN_DIR="$AK_ROOT/instance/run"
AK_LOG_DIR="$AK_ROOT/instance/logs"

# ak_process_running NAME — true when instance/run/NAME.pid names a live process.
ak_process_running() {
    local pidfile="$AK_RUN_DIR/$1.pid"
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# ak_process_start NAME CMD... — start CMD in the background (new session), logging to
# instance/logs/NAME.log, unless it already runs. Idempotent.
ak_process_start() {
    local name="$1"
    shift
    mkdir -p "$AK_RUN_DIR" "$AK_LOG_DIR"
    if ak_process_running "$name"; then
        ak_log "$name already running (pid $(cat "$AK_RUN_DIR/$name.pid"))"
        return 0
    fi
    setsid "$@" >>"$AK_LOG_DIR/$name.log" 2>&1 < /dev/null &
    echo $! >"$AK_RUN_DIR/$name.pid"
    sleep 1
    if ! ak_process_running "$name"; then
        tail -n 20 "$AK_LOG_DIR/$name.log" >&2 || true
        ak_die "$name did not start; see $AK_LOG_DIR/$name.log"
    fi
    ak_log "$name started (pid $(cat "$AK_RUN_DIR/$name.pid"), log instance/logs/$name.log)"
}

# ak_process_stop NAME — SIGTERM, then SIGKILL after 10 s.
ak_process_stop() {
    local name="$1" pid
    ak_process_running "$name" || { rm -f "$AK_RUN_DIR/$name.pid"; return 0; }
    pid=$(cat "$AK_RUN_DIR/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$AK_RUN_DIR/$name.pid"
    ak_log "$name stopped"
}
