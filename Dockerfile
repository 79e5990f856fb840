# compactd: multi-stage build → a small runtime image running `node dist/src/main.js` as a non-root user.
#
#   docker build -t compactd .
#   docker run -p 6880:6880 -v compactd-data:/data -e COMPACTD_AUTH_TOKEN=<16+ characters> compactd
#
# NB: the image listens on 0.0.0.0 (COMPACTD_HOST), and compactd refuses a non-loopback address
# without COMPACTD_AUTH_TOKEN (SPEC §7): without a token the container exits at once with a one-line
# reason. Every setting is an environment variable (see `docker run compactd --help`); point
# COMPACTD_BLOB / COMPACTD_CONSENSUS at s3:// and postgres:// to share state between instances.

ARG NODE_IMAGE=node:22-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routes ./routes
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    COMPACTD_HOST=0.0.0.0 \
    COMPACTD_PORT=6880 \
    COMPACTD_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The file stores live under /data by default; the volume must be writable by the runtime user.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 6880
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.COMPACTD_PORT || 6880) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM (docker stop) drains: stop accepting, finish running work within COMPACTD_SHUTDOWN_GRACE,
# close the stores, exit 0. Give `docker stop -t` more than that grace.
ENTRYPOINT ["node", "dist/src/main.js"]
