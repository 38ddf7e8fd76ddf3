# forewarn daemon image. Two stages: the first installs every dependency and compiles the
# TypeScript (`npm run build` → dist/); the second installs the production dependencies only
# (tsx and typescript are dev dependencies) and runs the compiled code.

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:22-bookworm-slim
# NODE_ENV=production makes bin/forewarn.js run dist/ (and refuse to start without it);
# FOREWARN_CODE=dist says the same explicitly, so that a stack that sets NODE_ENV=development
# (docker-compose.yml) still runs the compiled code: tsx is not installed here.
ENV NODE_ENV=production FOREWARN_CODE=dist
WORKDIR /app

# Dependencies first, so that a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The files the code reads at run time (migrations/, templates/, config/) and bin/ come from the
# sources (.dockerignore keeps a local dist/ and node_modules/ out); the code from the build stage.
# Everything stays owned by root: the daemon reads its code and config but never rewrites them.
COPY . .
COPY --from=build /app/dist ./dist
# outbox/ (git-ignored output) is the one directory in /app the process may write to.
RUN mkdir -p outbox && chown node:node outbox

USER node
ENTRYPOINT ["node", "bin/forewarn.js"]
CMD ["start"]
