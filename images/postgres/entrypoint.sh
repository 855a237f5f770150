#!/bin/sh
# PostgreSQL 15 entrypoint: initdb on first start, then run the server in the foreground.
# Env: POSTGRES_USER (postgres), POSTGRES_DB (postgres), POSTGRES_PASSWORD (unset = trust),
#      POSTGRES_HOST_AUTH_METHOD (overrides the pg_hba method for remote hosts), PGDATA.
# Extra arguments go to the server, e.g. `-c max_connections=20`.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=postgres}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile="$(mktemp)"
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 --no-sync \
            --auth-local=trust --auth-host=scram-sha-256 >/dev/null
        rm -f "$pwfile"
        method=scram-sha-256
    else
        initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 --no-sync --auth=trust >/dev/null
        method=trust
    fi
    method="${POSTGRES_HOST_AUTH_METHOD:-$method}"
    # Connections arrive from the bridge gateway, not from 127.0.0.1.
    cat >>"$PGDATA/pg_hba.conf" <<HBA
host all all 0.0.0.0/0 $method
host all all ::/0 $method
HBA
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '/var/run/postgresql'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
# The image leaves out LLVM, PostgreSQL's JIT provider.
jit = off
# A throwaway test server: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    # Single-user mode: no temporary server, no port opened before the database is ready.
    # The extension in template1 is inherited by every database created later.
    echo 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' \
        | postgres --single -D "$PGDATA" template1 >/dev/null
    echo 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' \
        | postgres --single -D "$PGDATA" postgres >/dev/null
    if [ "$POSTGRES_DB" != postgres ]; then
        db="$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')"
        printf 'CREATE DATABASE "%s"\n' "$db" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "postgres-entrypoint: initialised $PGDATA (database $POSTGRES_DB, host auth $method)" >&2
fi

exec postgres -D "$PGDATA" "$@"
