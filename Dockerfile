# compactd: multi-stage build → a small runtime image running `node dist/src/main.js` as a non-root user.
#
#   docker build -t compactd .
#   docker run -p 6880:6880 -v compactd-data:/data -e COMPACTD_AUTH_TOKEN=<16+ characters> compactd
#
# NB: the image listens on 0.0.0.0 (COMPACTD_HOST), and compactd refuses a non-loopback address
# without COMPACTD_AUTH_TOKEN: without a token the container exits at once with a one-line reason.
# Every setting is an environment variable (see `docker run compactd --help`); point COMPACTD_BLOB /
# COMPACTD_CONSENSUS at s3:// and postgres:// to share state between instances.
#
# NODE_IMAGE: any Debian-based image with Node 24, npm and a `node` user. Where public registries
# cannot be reached, build one locally with scripts/docker-base-image.sh and pass
# `--build-arg NODE_IMAGE=compactd-base:node24`.
# npm behind a TLS-intercepting proxy: pass its CA bundle as a build secret,
# `DOCKER_BUILDKIT=1 docker build --secret id=npm_ca,src=/path/to/ca.pem .`; it is used by the
# build stages' `npm ci` only and never lands in the image.

ARG NODE_IMAGE=node:24-bookworm-slim

# npm ci with the optional CA bundle. The build stage keeps optional dependencies: esbuild's
# binary, which bundles the console, is one (the other is the Node binary npm scripts run on a
# developer's machine; it stays in this stage).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routes ./routes
COPY ui ./ui
COPY scripts/build-ui.ts ./scripts/
# The server (dist/src, dist/routes) and the console (dist/ui), as `npm run build` makes them.
RUN npx tsc -p tsconfig.build.json && npx tsx scripts/build-ui.ts

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --omit=dev --omit=optional --no-audit --no-fund --loglevel=error && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# GLIBC_TUNABLES: malloc asks for transparent huge pages (src/engine/huge-pages.ts), as `npm start` does.
ENV NODE_ENV=production \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
    COMPACTD_HOST=0.0.0.0 \
    COMPACTD_PORT=6880 \
    COMPACTD_DATA_DIR=/data
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The file stores live under /data by default; the volume must be writable by the runtime user.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 6880
# The healthcheck speaks HTTPS when COMPACTD_TLS_CERT is set; it checks liveness, not the
# certificate (whose names need not include 127.0.0.1).
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require(process.env.COMPACTD_TLS_CERT ? 'https' : 'http').get({ host: '127.0.0.1', port: process.env.COMPACTD_PORT || 6880, path: '/healthz', rejectUnauthorized: false, timeout: 2500 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
# SIGTERM (docker stop) drains: /readyz says 503 for COMPACTD_SHUTDOWN_DRAIN (5s) while requests are
# still served, then stop accepting; running work finishes within COMPACTD_SHUTDOWN_GRACE (30s by
# default), the stores close, exit 0. Give `docker stop -t` more than the longer of the two.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/main.js"]
