#!/usr/bin/env bash
# Runs every test with the machine's own Node.js instead of the one npm scripts run (the
# node-linux-* package, Node 24): the suite must also pass there (CI runs this on Node 20).
# NB: npm puts node_modules/.bin first on a script's PATH; the machine's node is the first one
# outside it. Tests that start `npm start` still run the server on the packaged Node, as operators do.
set -euo pipefail
cd "$(dirname "$0")/.."

path_without_bin=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v '/node_modules/\.bin$' | paste -sd: -)
system_node=$(PATH="$path_without_bin" command -v node || true)
if [ -z "$system_node" ]; then
  echo "test-system-node: no node on PATH outside node_modules/.bin" >&2
  exit 1
fi
echo "test-system-node: $system_node $("$system_node" --version)" >&2
COMPACTD_TEST_NODE="$system_node" exec npm run test:unit
