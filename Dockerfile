# a2a-ledger server image: the server built to one JavaScript file (scripts/build.mjs), run by node.
FROM node:20-bookworm
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY scripts ./scripts
COPY tsconfig.json ./
RUN node scripts/build.mjs --cli
ENV HOST=0.0.0.0 PORT=9292
EXPOSE 9292
# Ready: the store takes commits and the server is not shutting down (GET /readyz; /healthz is liveness only).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT||9292}/readyz`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM is a clean stop (streams end, workers are interrupted, leases given back).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/main.js"]
CMD ["serve"]
