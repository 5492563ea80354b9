#!/bin/sh
# Entrypoint of the local PostgreSQL test image. It follows the contract of the
# official postgres image (and so of Immich's): POSTGRES_USER, POSTGRES_PASSWORD or
# POSTGRES_PASSWORD_FILE, POSTGRES_DB, POSTGRES_INITDB_ARGS; data in
# /var/lib/postgresql/data, initialised only when empty; scram over TCP.
set -eu

PG_BIN=$(echo /usr/lib/postgresql/*/bin)
PATH="$PG_BIN:$PATH"
export PATH
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

# Arguments that start with '-' are options for the server.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    chown postgres:postgres "$PGDATA" /run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

say() { printf 'entrypoint: %s\n' "$*" >&2; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
        say "$PGDATA is not empty but holds no database; refusing to initialise over it"
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        password=$(cat "$POSTGRES_PASSWORD_FILE")
    else
        password=${POSTGRES_PASSWORD:-}
    fi
    if [ -z "$password" ]; then
        say "no password: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE"
        exit 1
    fi
    say "initialising a new database cluster in $PGDATA"
    # The password reaches initdb through a pipe, never through its arguments.
    # shellcheck disable=SC2086
    printf '%s\n' "$password" | initdb --username="$user" --pwfile=/dev/stdin \
        --auth-local=trust --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-} >&2
    unset password
    printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

    # A server without TCP while initialising, so that health checks over TCP only
    # pass once the real server runs.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >&2
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -q --username="$user" --dbname=postgres \
            --set=db="$db" <<'SQL' >&2
CREATE DATABASE :"db";
SQL
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) psql -v ON_ERROR_STOP=1 -q --username="$user" --dbname="$db" -f "$f" >&2 ;;
            *.sh) . "$f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >&2
    say "initialisation complete"
fi

shift
exec postgres -D "$PGDATA" "$@"
