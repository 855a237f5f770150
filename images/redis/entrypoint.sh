#!/bin/sh
# Redis entrypoint: test-friendly defaults, then any extra arguments (they win).
# Env: REDIS_PASSWORD (unset = no auth).
set -eu
set -- --bind 0.0.0.0 --protected-mode no --dir /data --save "" --appendonly no "$@"
if [ -n "${REDIS_PASSWORD:-}" ]; then
    set -- "$@" --requirepass "$REDIS_PASSWORD"
fi
exec redis-server "$@"
