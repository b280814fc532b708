# ragline worker and API: one image, the command picks the role (see docker-compose.yml).
# The TypeScript sources run through tsx (a runtime dependency), so there is no build stage to keep in sync.

FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Installing apart from the sources keeps this layer cached until the lockfile changes.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production \
    RAGLINE_DATA_DIR=/data \
    RAGLINE_METRICS_PORT=9464 \
    RAGLINE_HTTP_PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080 9464
CMD ["node", "bin/ragline.mjs", "worker"]
