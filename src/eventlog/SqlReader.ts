import { Context } from "effect"
import type { SqlClient } from "@effect/sql"

/**
 * The client for reads outside a transaction (GetTask, ListTasks, stream
 * catch-up). On SQLite it is a second, read-only connection: WAL lets it
 * read committed data while the writer's connection is busy, so readers
 * never queue behind write transactions. Where no reader is provided, the
 * main client serves reads too.
 */
export class SqlReader extends Context.Tag("a2a-ledger/SqlReader")<SqlReader, SqlClient.SqlClient>() {}
