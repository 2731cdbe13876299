/**
 * The source text of a top-level member of a JSON object, as the client wrote
 * it. JSON.parse turns a number beyond 2^53 into a rounded double
 * (1180591620717411303424 becomes 1.1805916207174113e+21); JSON-RPC wants the
 * response's id to be the request's, so such an id is echoed from its text.
 *
 * `text` must already be valid JSON (JSON.parse accepted it). When the key
 * occurs more than once, the last one counts, as in JSON.parse.
 */
export const topLevelMember = (text: string, key: string): string | undefined => {
  let i = text.indexOf("{")
  if (i < 0) return undefined
  i++
  let found: string | undefined
  const skipSpace = () => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++
  }
  /** From an opening quote, past the closing one. */
  const skipString = () => {
    i++
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1
    i++
  }
  for (;;) {
    skipSpace()
    if (text[i] !== '"') return found // "}" of an empty object, or the end
    const keyStart = i
    skipString()
    const name = JSON.parse(text.slice(keyStart, i)) as string
    skipSpace()
    i++ // ":"
    skipSpace()
    const valueStart = i
    let depth = 0
    while (i < text.length) {
      const c = text[i]!
      if (c === '"') {
        skipString()
        continue
      }
      if (c === "{" || c === "[") depth++
      else if (c === "}" || c === "]") {
        if (depth === 0) break
        depth--
      } else if (c === "," && depth === 0) break
      i++
    }
    if (name === key) found = text.slice(valueStart, i).trim()
    if (text[i] !== ",") return found
    i++
  }
}
