#!/usr/bin/env bash
# Checks a built compactd image for real: runs it (host network, a token, a free loopback port, a
# short shutdown grace, a data volume), waits for its HEALTHCHECK to say healthy, checks /readyz,
# that it serves the console, that it runs as a non-root user on Node 24, that it serves HTTPS
# with a certificate mounted (healthcheck included), writes a shard and compacts it, then `docker stop`s
# it and checks it exited 0 on its own, within the grace. Removes what it made.
#
#   bash scripts/check-image.sh compactd:ci
set -euo pipefail

image=${1:?usage: check-image.sh IMAGE}
docker=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
grace_s=5
token="check-image-$RANDOM$RANDOM$RANDOM"
name="compactd-check-$$"
volume="compactd-check-$$"
port=$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })")
base="http://127.0.0.1:$port"

cleanup() {
  "$docker" rm -f "$name" >/dev/null 2>&1 || true
  "$docker" volume rm "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

fail() {
  echo "check-image: FAILED: $*" >&2
  "$docker" logs --tail 30 "$name" >&2 2>&1 || true
  exit 1
}

# field JSON PATH: one field of a JSON document, e.g. `field "$body" status`.
field() {
  node -e 'const v = process.argv[2].split(".").reduce((o, k) => o?.[k], JSON.parse(process.argv[1])); console.log(typeof v === "object" ? JSON.stringify(v) : String(v))' "$1" "$2"
}

# call METHOD PATH [BODY]: the response body; fails unless the status is 2xx.
call() {
  local out status
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" "$base$2" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' ${3:+--data "$3"}) || fail "$1 $2: no answer"
  [ "${status:0:1}" = 2 ] || fail "$1 $2: HTTP $status $(cat "$out")"
  cat "$out"
  rm -f "$out"
}

echo "check-image: run $image on 127.0.0.1:$port"
"$docker" run -d --name "$name" --network host -v "$volume:/data" \
  -e COMPACTD_PORT="$port" -e COMPACTD_AUTH_TOKEN="$token" -e COMPACTD_SHUTDOWN_GRACE="${grace_s}s" \
  "$image" >/dev/null

# health_of NAME: the container's health once its healthcheck has decided (or `gone`), within 90 s.
health_of() {
  local health=starting
  for _ in $(seq 1 90); do
    health=$("$docker" inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone)
    [ "$health" = healthy ] || [ "$health" = unhealthy ] || [ "$health" = gone ] && break
    sleep 1
  done
  echo "$health"
}

health=$(health_of "$name")
[ "$health" = healthy ] || fail "health is $health"
echo "check-image: healthcheck healthy"

ready=$(curl -sS "$base/readyz")
[ "$(field "$ready" status)" = ready ] || fail "readyz: $ready"
echo "check-image: /readyz ready"

# The console: the page, and the script it names, as a browser would fetch them.
page=$(curl -sS -w '\n%{http_code}' "$base/ui") || fail "/ui: no answer"
[ "${page##*$'\n'}" = 200 ] || fail "/ui: HTTP ${page##*$'\n'}"
script=$(grep -o '/ui/assets/console-[A-Za-z0-9]*\.js' <<<"$page" | head -1)
[ -n "$script" ] || fail "/ui names no console script"
status=$(curl -sS -o /dev/null -w '%{http_code}' "$base$script") || fail "$script: no answer"
[ "$status" = 200 ] || fail "$script: HTTP $status"
echo "check-image: console served (/ui, $script)"

uid=$("$docker" exec "$name" id -u)
[ "$uid" != 0 ] || fail "runs as root"
node_version=$("$docker" exec "$name" node --version)
case "$node_version" in v24.*) ;; *) fail "node $node_version, not 24" ;; esac
echo "check-image: user $uid, node $node_version"

# One small batch: below the small-input heuristics unless they are lowered.
call PATCH /v1/configs '{"persist_compaction_heuristic_min_inputs":1}' >/dev/null
shard=$(call POST /v1/shards '{"name":"check","timestamp":"u64","keySchema":{"type":"utf8"},"valSchema":{"type":"int64"}}')
id=$(field "$shard" shardId)
call POST "/v1/shards/$id/batches" \
  '{"lower":[0],"upper":[5],"updates":[{"key":"a","val":1,"time":1,"diff":1},{"key":"a","val":1,"time":3,"diff":2},{"key":"b","val":2,"time":2,"diff":1},{"key":"b","val":2,"time":4,"diff":-1}]}' >/dev/null
call POST "/v1/shards/$id/since" '{"since":[4]}' >/dev/null
desc=$(field "$(call GET "/v1/shards/$id")" 'trace.batches.0.desc')
compaction=$(call POST "/v1/shards/$id/compactions" "{\"desc\":$desc,\"wait\":true}")
[ "$(field "$compaction" status)" = succeeded ] || fail "compaction: $compaction"
snapshot=$(call GET "/v1/shards/$id/snapshot?asOf=4")
echo "check-image: shard written and compacted ($(field "$compaction" result)); snapshot at 4: $snapshot"

started=$(date +%s)
"$docker" stop -t $((grace_s + 10)) "$name" >/dev/null
took=$(($(date +%s) - started))
code=$("$docker" inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code $code after docker stop"
echo "check-image: docker stop: exit 0 after ${took}s (grace ${grace_s}s, stop timeout $((grace_s + 10))s)"
"$docker" logs "$name" 2>&1 | grep -q '"msg":"stopped"' || fail "no 'stopped' log line"

# HTTPS: the same image with a certificate mounted read-only; the healthcheck must say healthy
# over TLS, and a client trusting the certificate must get /readyz.
tls_dir=$(mktemp -d /tmp/compactd-check-tls.XXXXXX)
tls_name="$name-tls"
cleanup_tls() {
  "$docker" rm -f "$tls_name" >/dev/null 2>&1 || true
  rm -rf "$tls_dir"
  cleanup
}
trap cleanup_tls EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$tls_dir/tls.key" -out "$tls_dir/tls.crt" \
  -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null || fail "openssl could not make a certificate"
chmod 755 "$tls_dir" && chmod 644 "$tls_dir/tls.key" "$tls_dir/tls.crt" # the image runs as uid 1000
"$docker" run -d --name "$tls_name" --network host -v "$tls_dir:/tls:ro" -e COMPACTD_PORT="$port" -e COMPACTD_AUTH_TOKEN="$token" \
  -e COMPACTD_TLS_CERT=/tls/tls.crt -e COMPACTD_TLS_KEY=/tls/tls.key "$image" >/dev/null
health=$(health_of "$tls_name")
[ "$health" = healthy ] || { "$docker" logs --tail 30 "$tls_name" >&2 2>&1 || true; fail "over TLS, health is $health"; }
ready=$(curl -sS --cacert "$tls_dir/tls.crt" "https://127.0.0.1:$port/readyz") || fail "https /readyz: no answer"
[ "$(field "$ready" status)" = ready ] || fail "https readyz: $ready"
"$docker" stop -t $((grace_s + 10)) "$tls_name" >/dev/null
echo "check-image: over TLS: healthcheck healthy, https /readyz ready"

echo "check-image: OK"
