import * as path from "node:path"
import * as Store from "../../src/eventlog/Store"
import { tempDir } from "../support/server"
import { eventLogContract } from "./contract"

eventLogContract("SQLite file", () => Store.layerSqlite(path.join(tempDir(), "contract.db")))
