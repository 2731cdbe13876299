/**
 * ProtoJSON parsers accept the original snake_case field names as well as
 * camelCase (the TCK sends e.g. `task_id`). We rename keys to camelCase on
 * input, leaving free-form values (metadata, data parts, params) untouched.
 */
const freeForm = new Set(["metadata", "data", "params"])

/** Only proper snake_case names (`task_id`) are renamed; any other key is kept as sent. */
const snakeCase = /^[a-z][a-z0-9]*(_[a-z0-9]+)+$/
const camel = (key: string) => (snakeCase.test(key) ? key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()) : key)

export const camelCaseKeys = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(camelCaseKeys)
  if (value === null || typeof value !== "object") return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const name = camel(key)
    // On conflict the camelCase spelling wins.
    if (name !== key && Object.hasOwn(value, name)) continue
    // defineProperty, not assignment: a "__proto__" key stays an ordinary key.
    Object.defineProperty(out, name, { value: freeForm.has(name) ? v : camelCaseKeys(v), enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** Nesting depth of a parsed JSON value, measured without recursion (so any input is safe to measure). */
export const jsonDepth = (value: unknown): number => {
  let max = 0
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (v === null || typeof v !== "object") continue
    if (depth > max) max = depth
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1])
  }
  return max
}
