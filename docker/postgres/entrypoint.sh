# Creates the cluster on first start (user POSTGRES_USER with POSTGRES_PASSWORD, password logins
# from the network), then runs the server in the foreground; `docker stop` is a fast shutdown.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
: "${POSTGRES_USER:=compactd}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
