import { type Console, Effect } from "effect"

/**
 * What @effect/cli prints, made fit to read: without ANSI escapes when the
 * output is not a terminal (a pipe, a file, a test), and for `--help` wrapped
 * to the terminal's width (80 columns otherwise). Its command list pads every
 * row to the longest usage line (hundreds of columns); here each command's
 * usage is wrapped, with its description on the next line. A repeated option
 * (`--allow-webhook-host text...`) may be left out, so it gets brackets as
 * every other optional flag does.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the escape sequences this removes
const ansi = /\x1b\[[0-9;]*m/g

export const stripAnsi = (text: string) => text.replace(ansi, "")

/** Break `line` at spaces so no piece is wider than `width`; later pieces are indented by `indent`. */
const wrap = (line: string, width: number, indent: string): Array<string> => {
  if (stripAnsi(line).length <= width) return [line]
  const lead = /^\s*/.exec(line)![0]
  const lines: Array<string> = []
  let current = lead
  // A bracketed flag ("[--recovery rerun | fail]") stays on one line.
  for (const word of line.slice(lead.length).match(/\[[^\]]*\]|\([^)]*\)|\S+/g) ?? []) {
    const candidate = current.trim() === "" ? current + word : `${current} ${word}`
    if (stripAnsi(candidate).length > width && current.trim() !== "") {
      lines.push(current)
      current = indent + word
    } else current = candidate
  }
  if (current.trim() !== "") lines.push(current)
  return lines
}

/** `--name type...` outside brackets: a repeated option, which may be given zero times. */
const bracketRepeated = (usage: string) => usage.replace(/(^|\s)(--[a-z0-9-]+(?: [a-z]+)?\.\.\.)(?=\s|$)/g, "$1[$2]")

export const formatHelp = (text: string, width: number): string => {
  const out: Array<string> = []
  for (const raw of text.split("\n")) {
    // A command-list row: "  - usage<padding>description".
    const row = /^(\s*)- (.*?)\s{2,}(\S.*)?$/.exec(stripAnsi(raw))
    if (row !== null && /^(\s*)- /.test(stripAnsi(raw))) {
      const [, lead = "", usage = "", description] = row
      out.push(...wrap(`${lead}- ${bracketRepeated(usage)}`, width, `${lead}    `))
      if (description !== undefined) out.push(...wrap(`${lead}    ${description}`, width, `${lead}    `))
      continue
    }
    const line = raw.replace(/\s+$/, "")
    const usageLine = /^\$ /.test(stripAnsi(line))
    const lead = /^\s*/.exec(stripAnsi(line))![0]
    out.push(...wrap(usageLine ? bracketRepeated(line) : line, width, usageLine ? "    " : lead))
  }
  return out.join("\n")
}

const isHelpRequest = (argv: ReadonlyArray<string>) => argv.some((a) => a === "--help" || a === "-h")

/**
 * Run `program` with a console that does the above. `terminal` says whether
 * standard output is a terminal, and its width.
 */
export const readableOutput = <A, E, R>(
  argv: ReadonlyArray<string>,
  terminal: { readonly isTTY: boolean; readonly columns: number | undefined },
  program: Effect.Effect<A, E, R>
) =>
  Effect.flatMap(Effect.console, (base) => {
    const help = isHelpRequest(argv)
    const width = terminal.isTTY ? Math.max(40, (terminal.columns ?? 100) - 1) : 80
    const fit = (a: unknown) => {
      if (typeof a !== "string") return a
      const plain = terminal.isTTY ? a : stripAnsi(a)
      return help ? formatHelp(plain, width) : plain
    }
    const console: Console.Console = {
      ...base,
      log: (...args: ReadonlyArray<unknown>) => base.log(...args.map(fit)),
      error: (...args: ReadonlyArray<unknown>) => base.error(...args.map((a) => (typeof a === "string" && !terminal.isTTY ? stripAnsi(a) : a)))
    }
    return Effect.withConsole(program, console)
  })
