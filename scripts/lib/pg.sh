# shellcheck shell=bash
# Private throwaway PostgreSQL for scripts/demo, scripts/bench and scripts/test. Source it, then call
# `use_database` (scripts/test: a configured server, else a private one) or `use_private_database`
# (scripts/demo and scripts/bench: always a private one, whatever is configured).
#
# A private server is a new cluster created in a temporary directory (initdb/pg_ctl, run as the `postgres`
# user when we are root, since initdb refuses root), listening only on a Unix socket inside that
# directory, and stopped and deleted when the script exits. The system's own cluster is never touched.
# Debian's `postgresql` package is installed with apt-get when no server binaries are found.

pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
        echo "$dir"
        return 0
    fi
    command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

# Installs Debian packages with apt-get (through sudo when not root).
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install_postgres() {
    echo "molteniron: PostgreSQL server binaries not found; installing Debian's postgresql package" >&2
    apt_install postgresql
}

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_pg_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_private_postgres() {
    local bindir
    bindir=$(pg_bindir) || true
    if [ -z "$bindir" ]; then
        install_postgres
        bindir=$(pg_bindir)
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "molteniron: running as root needs a 'postgres' user to own the private cluster" >&2
        return 1
    fi
    MOLTENIRON_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molteniron-pg.XXXXXX")
    [ "$(id -u)" -eq 0 ] && chown postgres "$MOLTENIRON_PG_DIR"
    chmod 755 "$MOLTENIRON_PG_DIR"
    trap stop_private_postgres EXIT
    as_pg_owner "$bindir/initdb" -D "$MOLTENIRON_PG_DIR/data" -U molteniron -A trust --no-sync >/dev/null
    as_pg_owner "$bindir/pg_ctl" -D "$MOLTENIRON_PG_DIR/data" -l "$MOLTENIRON_PG_DIR/server.log" -w -s \
        -o "-k $MOLTENIRON_PG_DIR -c listen_addresses='' -p 5432 -c fsync=off -c max_connections=200" start
    export PGHOST="$MOLTENIRON_PG_DIR" PGPORT=5432 PGUSER=molteniron PGDATABASE=postgres
    MOLTENIRON_PG_BINDIR=$bindir
    echo "molteniron: private PostgreSQL running in $MOLTENIRON_PG_DIR" >&2
}

stop_private_postgres() {
    if [ -n "${MOLTENIRON_PG_DIR:-}" ] && [ -d "$MOLTENIRON_PG_DIR/data" ]; then
        as_pg_owner "$MOLTENIRON_PG_BINDIR/pg_ctl" -D "$MOLTENIRON_PG_DIR/data" -m immediate -s stop || true
        rm -rf "$MOLTENIRON_PG_DIR"
    fi
}

# Installs what building molteniron needs beyond Rust: a C compiler (libpq is built from source, with no
# LDAP or Kerberos) and OpenSSL's headers and static libraries (Debian's libssl-dev), which are linked in.
ensure_build_deps() {
    local need=()
    command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
    command -v python3 >/dev/null 2>&1 || need+=(python3) # contrib/test_hook_mi_ipmiblob.py
    [ -e /usr/include/openssl/ssl.h ] && ls /usr/lib/*/libssl.a >/dev/null 2>&1 || need+=(libssl-dev)
    [ ${#need[@]} -eq 0 ] && return 0
    echo "molteniron: installing build dependencies: ${need[*]}" >&2
    apt_install "${need[@]}"
}

# Installs what the tests need beyond the build: Debian's pgbouncer (tests/it/pooler.rs runs one from a
# temp dir; no service is started or used), Debian's prometheus for its promtool (tests/it/metrics.rs
# checks `molteniron metrics` and contrib/prometheus/alerts.yml with it; the server is not used, and
# node_exporter, which it recommends, is not installed) and man-db for `man -l` (tests/it/completions.rs).
ensure_test_deps() {
    local need=()
    [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
    command -v promtool >/dev/null 2>&1 || need+=(prometheus)
    command -v man >/dev/null 2>&1 || need+=(man-db)
    [ ${#need[@]} -eq 0 ] && return 0
    echo "molteniron: installing test dependencies: ${need[*]}" >&2
    # Debian's prometheus package (the tests need only its promtool) would start a Prometheus server
    # on install: a policy-rc.d that refuses every start keeps it from running, and is removed after.
    local policy=/usr/sbin/policy-rc.d sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        apt_install --no-install-recommends "${need[@]}" || { $sudo rm -f "$policy"; return 1; }
        $sudo rm -f "$policy"
    else
        apt_install --no-install-recommends "${need[@]}"
    fi
}

# Where cargo puts what it builds: CARGO_TARGET_DIR when set, else target/ (call from the repository root).
cargo_target_dir() {
    echo "${CARGO_TARGET_DIR:-target}"
}

# Always a private server: forgets every other way a server or a config file could be named
# (DATABASE_URL, MOLTENIRON_DATABASE_URL, every PG* variable, the config file, /etc/molteniron/config.yaml
# included), so nothing this script does can reach a database of the user's.
use_private_database() {
    local var
    unset DATABASE_URL MOLTENIRON_DATABASE_URL
    for var in $(compgen -v | grep '^PG' || true); do
        unset "$var"
    done
    export MOLTENIRON_CONFIG=/dev/null
    start_private_postgres
}

# scripts/test: the server DATABASE_URL, MOLTENIRON_DATABASE_URL or PGHOST names, else a private one.
use_database() {
    if [ -n "${DATABASE_URL:-}${MOLTENIRON_DATABASE_URL:-}${PGHOST:-}" ]; then
        echo "molteniron: using the configured database server" >&2
    else
        start_private_postgres
    fi
}

# Installs the Python tools the integration tests check contrib/ against (tests/it/integrations.rs):
# jenkins-job-builder's `jenkins-jobs test` for contrib/jenkins/, and ansible-core's `ansible-playbook` for
# roles/ and playbooks/ (devstack/ needs only bash). They go into a venv under the target directory (created once; pip runs again only
# when a tool is missing), whose bin/ is put first on PATH for the tests. Debian's python3-venv is
# installed when `python3 -m venv` is not available.
ensure_python_tools() {
    local venv
    venv="$(cargo_target_dir)/venv"
    case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
    if [ ! -x "$venv/bin/jenkins-jobs" ] || [ ! -x "$venv/bin/ansible-playbook" ]; then
        command -v python3 >/dev/null 2>&1 || apt_install python3
        if [ ! -x "$venv/bin/python3" ]; then
            python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
        fi
        echo "molteniron: installing jenkins-job-builder and ansible-core into $venv" >&2
        "$venv/bin/python3" -m pip install -q 'jenkins-job-builder>=6,<7' 'ansible-core>=2.16,<2.20'
    fi
    export PATH="$venv/bin:$PATH"
}
