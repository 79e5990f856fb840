#!/usr/bin/env bash
# Makes sure what the tests need beyond npm packages is on this machine: PostgreSQL's server
# binaries (the tests start their own cluster with initdb in a temp dir; DATABASE_URL skips that),
# and Debian's chromium for the console's browser test (CHROMIUM_PATH names another build).
set -euo pipefail

if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-deps: chromium is missing; install it (Debian: apt-get install chromium) or set CHROMIUM_PATH" >&2
    exit 1
  fi
  echo "ensure-test-deps: installing chromium with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

if [ -n "${DATABASE_URL:-}" ]; then exit 0; fi
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  id postgres >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && useradd --system --no-create-home postgres; } || true
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-deps: PostgreSQL server binaries (initdb, pg_ctl) are missing; install them (Debian: apt-get install postgresql) or set DATABASE_URL" >&2
  exit 1
fi
echo "ensure-test-deps: installing postgresql with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# The Debian package may start a cluster of its own; the tests do not use it.
service postgresql stop >/dev/null 2>&1 || true
id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
