#!/bin/sh
# The container's entrypoint: PostgreSQL's password as a file, like INTAKE_*_PASSWORD_FILE.
# libpq reads ~/.pgpass when the database URL carries no password, so PGPASSWORD_FILE
# (a Docker secret) is written there, readable by this user alone, for every intake
# command run in the container (the daemon, `docker compose exec`, the health check).
set -eu
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  password=$(cat "$PGPASSWORD_FILE")
  umask 077
  # .pgpass fields escape ":" and "\" with a backslash
  printf '*:*:*:*:%s\n' "$(printf '%s' "$password" | sed 's/[\\:]/\\&/g')" > "$HOME/.pgpass"
  unset PGPASSWORD_FILE password
fi
exec "$@"
