import { Context, Layer } from "effect"

export interface ServerOptions {
  readonly port: number
  readonly host: string
  /** Largest request body accepted, in bytes. */
  readonly maxBodyBytes: number
  /** Interval of the SSE keep-alive comment. */
  readonly keepAliveMs: number
  /** Base URL put in the agent card; derived from the request's Host header when unset. */
  readonly publicUrl?: string
  /** Open SSE streams allowed per authenticated principal (per client address without authentication). */
  readonly maxStreamsPerPrincipal: number
  /** At shutdown, how long in-flight requests may take before their connections are cut. */
  readonly shutdownGraceMs: number
  /** Prometheus metrics at `GET /metrics` (default on). */
  readonly metrics: boolean
  /**
   * The operator's board at `/board`: `local` (default: without authentication, only from a loopback
   * address; with it, admins anywhere), `open` (without authentication, from anywhere), `off`.
   */
  readonly board: "local" | "open" | "off"
  /** Every HTTP request is a span (default off; `serve` turns it on with an OTLP endpoint: observability/Tracing.ts). */
  readonly tracing: boolean
  /** The gRPC binding's port (0: any free one); unset, no gRPC (grpc/GrpcServer.ts). */
  readonly grpcPort?: number | undefined
}

export const defaultServerOptions: ServerOptions = {
  port: 9292,
  host: "0.0.0.0",
  maxBodyBytes: 1024 * 1024,
  keepAliveMs: 15_000,
  maxStreamsPerPrincipal: 1000,
  shutdownGraceMs: 2_000,
  metrics: true,
  board: "local",
  tracing: false
}

export class ServerConfig extends Context.Tag("a2a-ledger/ServerConfig")<ServerConfig, ServerOptions>() {}

export const layer = (options: Partial<ServerOptions> = {}) => Layer.succeed(ServerConfig, { ...defaultServerOptions, ...options })
