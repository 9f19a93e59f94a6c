# syntax=docker/dockerfile:1
# rendermill: one image for `rendermill api`, `rendermill worker`, `rendermill start` and the
# provider simulator. Node.js 24 is the current LTS line (22 is in maintenance); CI runs the
# test suite on 20, 22 and 24.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript with the dev dependencies, then drop them.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`: the lock file lacks the macOS/Windows builds of msgpackr-extract
# (an optional dependency of BullMQ's msgpackr; the registry it was made against has none), so
# `npm ci` refuses it as out of sync on every platform (see .ci/run). `npm install` still takes
# every version from the lock file; it only adds the missing platform entries, which are not
# installed on Linux. The Linux x64 and arm64 builds of sharp and msgpackr-extract are in the
# lock file, so the image builds on both.
# Install scripts stay off: no compiler is needed (sharp and msgpackr-extract ship prebuilt
# binaries).
RUN npm install --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY jobs jobs
COPY workers workers
COPY infra infra
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: production dependencies and the compiled code, run as the unprivileged `node`.
FROM ${NODE_IMAGE}
# tini as PID 1 forwards SIGTERM/SIGINT to node and reaps zombies. Node as PID 1 would also
# stop gracefully (rendermill handles SIGTERM and SIGINT itself; the kernel only ignores
# signals a PID 1 has no handler for), but not reap the children it does not wait for.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# package.json's "type": "module" makes node load dist/ as ES modules.
COPY package.json ./
COPY examples examples
# Code and dependencies are root's and read-only to the process; only its data dir (embedded
# S3 of `rendermill start`, when no bucket is configured) is writable.
RUN mkdir -p /app/.rendermill && chown node:node /app/.rendermill
USER node
# 8080: the API (PORT). 9464: a worker's /healthz, /readyz and /metrics (RENDERMILL_METRICS_PORT).
EXPOSE 8080 9464
# Liveness of whichever server this process runs: the API's port, else a worker's metrics port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const ports = [process.env.PORT || 8080, process.env.RENDERMILL_METRICS_PORT || 9464]; Promise.any(ports.map((port) => fetch('http://127.0.0.1:' + port + '/healthz').then((r) => { if (!r.ok) throw new Error(String(r.status)); }))).then(() => process.exit(0), () => process.exit(1));"]
# docker stop sends this, then SIGKILL after its grace period (compose: stop_grace_period):
# rendermill stops taking work, finishes what is in flight and exits 0 (README: Shutdown).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/src/cli/main.js"]
# API and a worker in one container; it needs REDIS_URL (the image has no redis-server to
# embed). Compose runs `api` and `worker` containers instead.
CMD ["start"]
