# glasswatch service image: the CLI (`glasswatch start`, `glasswatch collect <source>`, ...).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/rules/breakglass ./rules/breakglass
COPY --from=build /app/reports/queries ./reports/queries
COPY --from=build /app/demo ./demo
USER node
ENTRYPOINT ["node", "bin/glasswatch.js"]
CMD ["--help"]
