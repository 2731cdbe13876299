import { Effect } from "effect"
import { invalidParams } from "./errors.js"

/** Page tokens are opaque to clients: base64url of the JSON sort key of the last row. */
export const encodeToken = (key: ReadonlyArray<string>) => Buffer.from(JSON.stringify(key)).toString("base64url")

/** The sort key a token of `length` parts holds, or INVALID_PARAMS naming `pageToken`. */
export const decodeToken = (token: string, length: number) =>
  Effect.try({
    try: () => {
      const key = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown
      if (!Array.isArray(key) || key.length !== length || !key.every((k) => typeof k === "string")) throw new Error("bad token")
      return key as ReadonlyArray<string>
    },
    catch: () => invalidParams("pageToken", "is not a page token issued by this server (use nextPageToken from the previous page)")
  })
