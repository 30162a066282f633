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
# stubs/ too: package.json's overrides install its empty stand-in for ftp-srv's unused dependencies.
COPY package.json package-lock.json ./
COPY patches/ ./patches/
COPY stubs/ ./stubs/
RUN npm ci
COPY . .
# Pruning keeps the patched packages as they are. patch-package is a runtime dependency (the
# package's own postinstall needs it), so it stays too.
RUN npm run build && npm prune --omit=dev
# The CycloneDX SBOM of the runtime tree; the build fails if it lists a package of the deny list.
RUN node infra/sbom.mjs sbom.cdx.json && node infra/check-sbom.mjs sbom.cdx.json

# ---- runtime -------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
# OCI labels: `docker build --build-arg VERSION=$(node -p "require('./package.json').version") \
#   --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=https://github.com/<owner>/ftp-s3-bridge .`
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/example/ftp-s3-bridge
LABEL org.opencontainers.image.title="ftp-s3-bridge" \
      org.opencontainers.image.description="FTP/FTPS front end that streams every byte into S3 or any S3-compatible store" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT"
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
# The targets of node_modules' links to the stand-in (ip, bunyan, moment, yargs).
COPY --from=build /app/stubs ./stubs
# What a scanner reads without unpacking node_modules (docs/supply-chain.md).
COPY --from=build /app/sbom.cdx.json /usr/share/doc/ftp-s3-bridge/sbom.cdx.json
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
