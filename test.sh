#!/usr/bin/env bash
# Runs cdcd's tests. They start real Postgres servers from the machine's
# packages, so this installs Debian's postgresql first when it is missing.
set -euo pipefail
cd "$(dirname "$0")"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Postgres (apt-get install -y postgresql)..." >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi
command -v go >/dev/null 2>&1 || export PATH=$PATH:/usr/local/go/bin

go vet ./...
go test -race -timeout 20m ./...
