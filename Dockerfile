# forewarn daemon image. The CLI runs the TypeScript sources through tsx, which is a runtime
# dependency, so a production install (--omit=dev) is enough and no build step is needed.
FROM node:22-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so that a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Sources stay owned by root: the daemon reads its code and config but never rewrites them.
COPY . .
# outbox/ (git-ignored output) is the one directory in /app the process may write to.
RUN mkdir -p outbox && chown node:node outbox

USER node
ENTRYPOINT ["node", "bin/forewarn.js"]
CMD ["start"]
