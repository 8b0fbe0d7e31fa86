#!/usr/bin/env bash
# Runs cdcd on the embedded in-process bus against a local Postgres, which
# it sets up if needed (Debian's packages, a cluster under $CDCD_DEMO_DIR on
# port $CDCD_DEMO_PORT), and makes a few changes every second so that change
# events show on standard output as they happen. Ctrl-C stops everything;
# the cluster stays for the next run (remove $CDCD_DEMO_DIR to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${CDCD_DEMO_DIR:-/tmp/cdcd-demo}
port=${CDCD_DEMO_PORT:-54329}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  echo "installing Postgres (apt-get install postgresql)..." >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi # initdb refuses root

if [ ! -f "$dir/data/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  "${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
CONF
fi
if ! "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  if ! "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null; then
    echo "Postgres did not start; the end of $dir/log says:" >&2
    tail -n 5 "$dir/log" >&2
    echo "(another server on port $port? set CDCD_DEMO_PORT, or remove $dir to start over)" >&2
    exit 1
  fi
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
psql() { command psql -q -X -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }
psql <<'SQL'
CREATE TABLE IF NOT EXISTS contacts (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  first_name text,
  last_name text,
  lifecycle text DEFAULT 'lead',
  updated_at timestamptz NOT NULL DEFAULT now()
);
SQL

go build -o "$dir/cdcd" ./cmd/cdcd
"$dir/cdcd" run --config deploy/examples/quickstart.yaml &
cdcd_pid=$!
trap 'kill $cdcd_pid 2>/dev/null; wait $cdcd_pid 2>/dev/null' EXIT INT TERM

# A little application traffic: an insert, an update, now and then a delete.
i=0
while kill -0 $cdcd_pid 2>/dev/null; do
  i=$((i + 1))
  psql -c "INSERT INTO contacts (email, first_name, last_name) VALUES ('ada$i.$RANDOM@example.com', 'Ada', 'Lovelace')" \
       -c "UPDATE contacts SET lifecycle = 'customer', updated_at = now() WHERE id = (SELECT max(id) FROM contacts)" >/dev/null
  if [ $((i % 5)) -eq 0 ]; then
    psql -c "DELETE FROM contacts WHERE id = (SELECT min(id) FROM contacts)" >/dev/null
  fi
  sleep 1
done
