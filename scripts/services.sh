# Shared by scripts/test.sh and scripts/console.sh: the Python environment and local services.
# Everything here is idempotent: what is installed or running already is reused.

CANOPY_PG_PORT="${CANOPY_PG_PORT:-55432}"
CANOPY_REDIS_PORT="${CANOPY_REDIS_PORT:-56379}"
CANOPY_RUN_DIR="${CANOPY_RUN_DIR:-/tmp/canopy-services}"
STARTED_SERVICES=()

log() { printf '== %s\n' "$*"; }

ensure_python_env() {
  # $1: "dev" to include the test tools.
  local python="${CANOPY_PYTHON:-python3.11}"
  command -v "$python" >/dev/null || python=python3
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($python --version)"
    "$python" -m venv .venv
  fi
  local extras=""
  [ "${1:-}" = "dev" ] && extras="[dev]"
  local stamp=".venv/.installed${extras}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    # The dev extra has python-ldap and python-gssapi, which build from source here: against
    # OpenLDAP's and MIT Kerberos' headers (krb5-config comes with libkrb5-dev).
    if [ -n "$extras" ]; then
      local headers=()
      [ -f /usr/include/ldap.h ] || headers+=(libldap2-dev)
      [ -f /usr/include/sasl/sasl.h ] || headers+=(libsasl2-dev)
      command -v krb5-config >/dev/null || headers+=(libkrb5-dev)
      command -v gcc >/dev/null || headers+=(gcc)
      [ ${#headers[@]} -eq 0 ] || apt_install "${headers[@]}"
    fi
    log "installing Python packages"
    .venv/bin/python -m pip install -q --upgrade pip
    # setuptools warns about editable installs on every run; the warning is noise here.
    PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".${extras}"
    touch "$stamp"
  fi
}

apt_install() {
  if [ "$(id -u)" != "0" ]; then
    echo "Missing Debian packages: $*. Install them (sudo apt-get install $*) and run again." >&2
    exit 1
  fi
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_debian_packages() {
  local missing=()
  [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  # Browser tests drive Debian's Chromium, never a downloaded browser.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # Sign-in tests (issue 9): a real OpenLDAP server and its command-line tools; Node.js runs the
  # local OpenID provider.
  [ -x /usr/sbin/slapd ] || missing+=(slapd)
  command -v ldapsearch >/dev/null || missing+=(ldap-utils)
  command -v npm >/dev/null || missing+=(nodejs npm)
  # Kerberos tests (issue 6): kinit fills a worker's ticket cache as an admin would.
  command -v kinit >/dev/null || missing+=(krb5-user)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

as_postgres() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  local bin datadir
  bin="$(pg_bin)"
  datadir="$CANOPY_RUN_DIR/pg-$CANOPY_PG_PORT"
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$CANOPY_PG_PORT"; then
    log "PostgreSQL already running on 127.0.0.1:$CANOPY_PG_PORT"
    return
  fi
  mkdir -p "$CANOPY_RUN_DIR"
  chmod 755 "$CANOPY_RUN_DIR"
  if [ ! -f "$datadir/PG_VERSION" ]; then
    log "initialising PostgreSQL in $datadir"
    rm -rf "$datadir"
    mkdir -p "$datadir"
    [ "$(id -u)" = "0" ] && chown postgres:postgres "$datadir"
    as_postgres "$bin/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  log "starting PostgreSQL on 127.0.0.1:$CANOPY_PG_PORT"
  as_postgres "$bin/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 \
    -o "-p $CANOPY_PG_PORT -c listen_addresses=127.0.0.1 -k $datadir -c fsync=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
  STARTED_SERVICES+=("postgres:$datadir")
  "$bin/psql" -q -h 127.0.0.1 -p "$CANOPY_PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_roles WHERE rolname='canopy'" | grep -q 1 \
    || "$bin/psql" -q -h 127.0.0.1 -p "$CANOPY_PG_PORT" -U postgres -d postgres -c "CREATE ROLE canopy LOGIN SUPERUSER"
  "$bin/psql" -q -h 127.0.0.1 -p "$CANOPY_PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='canopy'" | grep -q 1 \
    || "$bin/psql" -q -h 127.0.0.1 -p "$CANOPY_PG_PORT" -U postgres -d postgres -c "CREATE DATABASE canopy OWNER canopy"
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p "$CANOPY_REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    log "Redis already running on 127.0.0.1:$CANOPY_REDIS_PORT"
    return
  fi
  mkdir -p "$CANOPY_RUN_DIR"
  log "starting Redis on 127.0.0.1:$CANOPY_REDIS_PORT"
  redis-server --port "$CANOPY_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$CANOPY_RUN_DIR/redis-$CANOPY_REDIS_PORT.pid" \
    --logfile "$CANOPY_RUN_DIR/redis-$CANOPY_REDIS_PORT.log" --dir "$CANOPY_RUN_DIR"
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$CANOPY_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  STARTED_SERVICES+=("redis:$CANOPY_REDIS_PORT")
}

stop_started_services() {
  [ "${CANOPY_KEEP_SERVICES:-0}" = "1" ] && return
  local service
  for service in "${STARTED_SERVICES[@]}"; do
    case "$service" in
      postgres:*) as_postgres "$(pg_bin)/pg_ctl" -D "${service#postgres:}" -m fast stop >/dev/null 2>&1 || true ;;
      redis:*) redis-cli -h 127.0.0.1 -p "${service#redis:}" shutdown nosave >/dev/null 2>&1 || true ;;
    esac
  done
}
