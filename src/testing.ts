/**
 * Helpers for testing agents and code that embeds a2a-ledger (`a2a-ledger/testing`).
 *
 * @packageDocumentation
 */
import { createLedger, type Ledger, type LedgerOptions } from "./ledger/createLedger.js"

/** The store that lives in memory and is gone when the ledger closes: fast, for tests. */
export const memoryStore = ":memory:"

/** A ledger on a store in memory: `createLedger` with `db: ":memory:"` and nothing logged. */
export const createTestLedger = (options: Omit<LedgerOptions, "db"> & { readonly db?: string }): Promise<Ledger> =>
  createLedger({ logLevel: "none", ...options, db: options.db ?? memoryStore })
