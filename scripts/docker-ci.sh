#!/usr/bin/env bash
# The Docker part of CI: builds compactd's image on Node 24 and checks it for real, builds the
# compose cluster's images and validates docker-compose.yml. As root it installs what is missing
# (Debian's docker.io, docker-compose, debootstrap, curl) and starts a Docker daemon when none answers
# (without a bridge or iptables, as these machines need: builds and runs use the host network),
# and stops that daemon at the end, failed or not. Public registries need not be reachable: the
# base image is built locally (scripts/docker-base-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=$(mktemp -d /tmp/compactd-docker-ci.XXXXXX)
base_image=compactd-base:node24
image=compactd:ci
started_daemon=
docker=

phase() { echo "== docker: $1 (${SECONDS}s)"; }

stop_daemon() {
  if [ -n "$started_daemon" ] && [ -s "$run_dir/dockerd.pid" ]; then
    local pid
    pid=$(cat "$run_dir/dockerd.pid")
    echo "== docker: stopping the daemon this script started (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "== docker: the daemon did not stop in 60 s; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$run_dir"
}
trap stop_daemon EXIT

phase "packages"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
[ -x /usr/bin/docker ] || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v curl >/dev/null 2>&1 || missing+=(curl) # scripts/check-image.sh
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # scripts/check-image.sh's TLS run
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-ci: missing ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "docker-ci: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# NB: Debian's client matches Debian's daemon and has BuildKit built in (a newer client without
# the buildx plugin cannot build with BuildKit, which the build secret needs).
docker=/usr/bin/docker
export DOCKER=$docker

phase "daemon"
if ! "$docker" info >/dev/null 2>&1; then
  dockerd --bridge=none --iptables=false --ip-masq=false --pidfile "$run_dir/dockerd.pid" >"$run_dir/dockerd.log" 2>&1 &
  started_daemon=1
  for _ in $(seq 1 60); do "$docker" info >/dev/null 2>&1 && break; sleep 1; done
  "$docker" info >/dev/null 2>&1 || { tail -20 "$run_dir/dockerd.log" >&2; echo "docker-ci: dockerd did not start" >&2; exit 1; }
fi
echo "docker-ci: daemon $("$docker" version -f '{{.Server.Version}}')"

phase "base image $base_image"
bash scripts/docker-base-image.sh "$base_image"

# NB: npm in a build needs this machine's CA bundle when it trusts more than Node does; it is
# passed as a build secret and never lands in an image.
secret=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then secret=(--secret "id=npm_ca,src=$NODE_EXTRA_CA_CERTS"); fi
build() { DOCKER_BUILDKIT=1 "$docker" build --network host --progress plain "${secret[@]}" "$@" >"$run_dir/build.log" 2>&1 || { tail -40 "$run_dir/build.log" >&2; exit 1; }; }

phase "build $image"
build --build-arg "NODE_IMAGE=$base_image" -t "$image" .
echo "docker-ci: $image is $("$docker" image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"

phase "check $image"
bash scripts/check-image.sh "$image"

phase "compose images and config"
build --build-arg "BASE_IMAGE=$base_image" -t compactd-postgres:latest docker/postgres
build --build-arg "BASE_IMAGE=$base_image" -t compactd-s3:latest docker/s3
COMPACTD_AUTH_TOKEN=compose-config-check-token NODE_IMAGE="$base_image" docker-compose -f docker-compose.yml config -q
echo "docker-ci: docker-compose.yml valid; its images build"
phase "done"
