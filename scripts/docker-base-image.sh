#!/usr/bin/env bash
# Builds the base image compactd's Dockerfile starts from when public registries cannot be
# reached: Debian bookworm (debootstrap, minbase) with Node.js and npm from the npm registry and a
# `node` user (uid 1000), imported as ${1:-compactd-base:node24}. Pass it as NODE_IMAGE:
#
#   bash scripts/docker-base-image.sh && docker build --build-arg NODE_IMAGE=compactd-base:node24 .
#
# Node's version is the one package.json pins for npm scripts (node-linux-<arch>); the Debian
# mirror is the one this machine's apt uses. Needs root, debootstrap and a Docker daemon.
# Skips the build when the image exists (set REBUILD=1 to force it).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-compactd-base:node24}
docker=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
npm_version=${NPM_VERSION:-11.19.1}

if [ -z "${REBUILD:-}" ] && "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "docker-base-image: $tag exists" >&2
  exit 0
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "docker-base-image: no Node package for $(uname -m)" >&2; exit 1 ;;
esac
node_version=$(node -p "require('./package.json').optionalDependencies['node-linux-$arch']")
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "docker-base-image: debootstrap bookworm from $mirror" >&2
# The host's apt archive doubles as debootstrap's package cache, so a second build downloads nothing.
cache=()
if [ -w /var/cache/apt/archives ]; then cache=(--cache-dir=/var/cache/apt/archives); fi
debootstrap --variant=minbase "${cache[@]}" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}

echo "docker-base-image: node-linux-$arch@$node_version and npm@$npm_version from the npm registry" >&2
(cd "$work" && npm pack --silent "node-linux-$arch@$node_version" "npm@$npm_version" >/dev/null)
tar -xzf "$work/node-linux-$arch-$node_version.tgz" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --create-home --shell /bin/bash node
chroot "$rootfs" node --version >/dev/null
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

echo "docker-base-image: importing $tag" >&2
tar -C "$rootfs" -c . | "$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' \
  - "$tag" >/dev/null
echo "docker-base-image: $tag: $("$docker" run --rm --network host "$tag" node --version)" >&2
