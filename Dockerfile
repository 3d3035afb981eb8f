# syntax=docker/dockerfile:1
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
# The proxy's figures in bench/README.md (RSS under 80 MB at load) are with a capped young generation;
# the operator's Deployment raises it to 4 MB. V8 reads this only at process start.
ENV NODE_OPTIONS=--max-semi-space-size=2
USER node
ENTRYPOINT ["/app/bin/trellis"]
CMD ["--help"]
