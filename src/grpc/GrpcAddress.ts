import { Context, Effect } from "effect"

/** Where the gRPC server listens, once it does: its port (for a port 0, the one the system chose). */
export class GrpcAddress extends Context.Tag("a2a-ledger/GrpcAddress")<GrpcAddress, { readonly port: number }>() {}

/** The gRPC binding's `host:port` for the card, where it is on: the host of the base URL, the gRPC server's port. */
export const grpcAddressOf = (base: string) =>
  Effect.map(Effect.serviceOption(GrpcAddress), (address) =>
    address._tag === "None" ? undefined : `${new URL(base).hostname}:${address.value.port}`
  )
