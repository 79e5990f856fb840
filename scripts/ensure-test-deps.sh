#!/usr/bin/env bash
# Makes sure what the tests need beyond npm packages is on this machine:
# - PostgreSQL's server binaries (the tests start their own cluster with initdb in a temp dir;
#   DATABASE_URL skips that);
# - Prometheus and promtool (the monitoring tests check the rules and /metrics with promtool and
#   start their own Prometheus on a random loopback port);
# - Debian's chromium for the console's browser test (CHROMIUM_PATH names another build);
# - bash, curl and jq, which the docs' examples use (test/docs-examples.test.ts runs them);
# - openssl, which makes the TLS tests' certificates (test/support/tls.ts).
# Missing ones are installed from Debian's packages with apt-get when running as root.
set -euo pipefail

missing=()
if [ -z "${DATABASE_URL:-}" ]; then
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
fi
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  missing+=(prometheus)
fi
for tool in curl jq openssl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium fonts-dejavu-core)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-deps: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}), or set DATABASE_URL for PostgreSQL and CHROMIUM_PATH for the browser" >&2
    exit 1
  fi
  echo "ensure-test-deps: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian packages may start services of their own; the tests start their own instances.
  for service in postgresql prometheus; do service "$service" stop >/dev/null 2>&1 || true; done
fi

if [ -z "${DATABASE_URL:-}" ] && [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
fi
