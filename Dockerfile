# syntax=docker/dockerfile:1
# ftp-s3-bridge container image.
#   docker build -t ftp-s3-bridge .
#   docker run --rm -p 2121:2121 -p 9464:9464 -p 30000-30009:30000-30009 \
#     -v "$PWD/config.yaml:/etc/ftp-s3-bridge/config.yaml:ro" ftp-s3-bridge

# ---- build: compile TypeScript, then drop the dev dependencies -------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# The manifests and patches/ come first so that this layer is cached until the dependencies change.
# patches/ must be there before `npm ci`: its postinstall step runs patch-package, which applies them.
COPY package.json package-lock.json ./
COPY patches/ ./patches/
RUN npm ci
COPY . .
# Pruning keeps the patched packages as they are. patch-package is a runtime dependency (the
# package's own postinstall needs it), so it stays too.
RUN npm run build && npm prune --omit=dev

# ---- runtime -------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the `node` user: the app cannot change its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
USER node
# FTP control, implicit FTPS, metrics/health (http.port), passive range (the config's
# ftp.passive.portMin..portMax must match what is published). Docker lets a non-root user bind 990
# inside the container; many Kubernetes runtimes do not, so the Helm chart listens on 9990 instead.
# Config: the file named by --config (or FTP_S3_BRIDGE_CONFIG), and any key from the environment as
# FTP_S3_BRIDGE__<SECTION>__<KEY>; for a configuration from the environment alone, run the image
# with the command `serve` (no --config).
EXPOSE 2121 990 9464 30000-30009
# tini is PID 1: it passes SIGTERM to node (which then drains transfers) and reaps zombies.
# bin/ftp-s3-bridge execs node with the bridge's malloc and V8 memory settings (see the script).
ENTRYPOINT ["/usr/bin/tini", "--", "/app/bin/ftp-s3-bridge"]
CMD ["--config", "/etc/ftp-s3-bridge/config.yaml"]
