# a2a-ledger server image. No build step: the TypeScript sources run through tsx.
FROM node:20-bookworm
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY tsconfig.json ./
ENV HOST=0.0.0.0 PORT=9292
EXPOSE 9292
# SIGTERM is a clean stop (streams end, workers are interrupted, leases given back).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/a2a-ledger.mjs"]
CMD ["serve"]
