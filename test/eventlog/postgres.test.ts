import { eventLogContract } from "./contract"
import { describePg, pgStoreLayer } from "../support/pg"

await describePg("PostgreSQL store", () => {
  eventLogContract("PostgreSQL", pgStoreLayer)
})
