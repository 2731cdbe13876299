import { randomUUID } from "node:crypto"

/**
 * The Hector-style REST surface (`/v1/…`, docs/protocol.md#hector-style-routes), translated at the edge into
 * the HTTP+JSON binding's params: what users of that server already send works here unchanged.
 *   - A message without `messageId` gets a fresh one, without `role` ROLE_USER (the sender is the user).
 *   - `configuration.blocking`: false returns at once (`returnImmediately`), true waits (the default).
 *   - Query parameters in snake_case (`context_id`, `page_size`) are the binding's camelCase ones.
 * Everything else passes through, for validation to judge as on any route.
 */
type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

const messageIn = (message: unknown): unknown => {
  if (!isObject(message)) return message
  const filled: Json = { ...message }
  if (filled.messageId === undefined || filled.messageId === "") filled.messageId = randomUUID()
  if (filled.role === undefined || filled.role === "") filled.role = "ROLE_USER"
  return filled
}

/** The body of a send on a Hector route as the binding's SendMessage params. */
export const sendParamsIn = (body: Json): Json => {
  const { message, configuration, ...rest } = body
  const out: Json = { ...rest, ...(message !== undefined ? { message: messageIn(message) } : {}) }
  if (isObject(configuration)) {
    const { blocking, ...conf } = configuration
    out.configuration = {
      ...conf,
      ...(typeof blocking === "boolean" && conf.returnImmediately === undefined ? { returnImmediately: !blocking } : {})
    }
  } else if (configuration !== undefined) out.configuration = configuration
  return out
}

/** `context_id` → `contextId`: a query parameter's snake_case name as the binding's. */
export const queryNameIn = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
