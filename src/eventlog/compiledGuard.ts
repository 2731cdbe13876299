import { Option, ParseResult, Schema, SchemaAST as AST } from "effect"

/**
 * `Schema.is(schema)`, compiled once into JavaScript source for the few kinds of schema the stored shapes
 * use (StoredSchema): strings, numbers, booleans, literals, unions, structs, records, arrays and
 * refinements. Effect's own `is` interprets the schema's AST on every call, allocating a result per
 * field: about 10 µs for a small task's snapshot, more than parsing its JSON, on every GetTask. A guard
 * built of generic closures still took 3.6 µs, most of it in keyed property reads that V8 cannot
 * specialise (`u[name]` with the name varying); generated code reads each field at a site of its own.
 * It takes well under a microsecond for the same answer (a test compares the two over generated values).
 *
 * A schema with anything else (a transformation, a suspension) is refused when the guard is made, not
 * misjudged; refinements' predicates and declared types (`Schema.declare`) are run as Effect runs them.
 * It answers yes or no only: why a value fails is Effect's to say (`ParseResult`), on the rare failure.
 */
export const compiledGuard = <A, I>(schema: Schema.Schema<A, I, never>): ((u: unknown) => u is A) => {
  const compiler = new Compiler()
  const root = compiler.expression(AST.typeAST(schema.ast), "u")
  // The source is made of this module's own templates, property names (quoted by JSON.stringify) and
  // literals (likewise); the schema's functions are passed in as `refs`, never turned into source.
  const body = `${compiler.functions.join("\n")}\nreturn function guard(u) { return ${root} }`
  return new Function("refs", "hasOwn", body)(compiler.refs, Object.hasOwn) as (u: unknown) => u is A
}

class Compiler {
  readonly functions: Array<string> = []
  readonly refs: Array<(u: unknown) => boolean> = []

  /** A JavaScript expression, true when the value in variable `v` is of type `ast`. */
  expression(ast: AST.AST, v: string): string {
    switch (ast._tag) {
      case "StringKeyword":
        return `typeof ${v} === "string"`
      case "NumberKeyword":
        return `typeof ${v} === "number"`
      case "BooleanKeyword":
        return `typeof ${v} === "boolean"`
      case "UndefinedKeyword":
        return `${v} === undefined`
      case "UnknownKeyword":
      case "AnyKeyword":
        return "true"
      case "Literal":
        return `${v} === ${literal(ast.literal)}`
      case "Union":
        return `(${ast.types.map((t) => this.expression(t, v)).join(" || ")})`
      case "Refinement": {
        // The refinement's own predicate, as Effect runs it: no issue means it holds.
        const filter = this.ref((u) => Option.isNone(ast.filter(u, AST.defaultParseOption, ast)))
        return `(${this.expression(ast.from, v)} && ${filter}(${v}))`
      }
      case "Declaration":
        return `${this.ref(ParseResult.is(Schema.make(ast)))}(${v})`
      case "TupleType":
        return `${this.array(ast)}(${v})`
      case "TypeLiteral":
        return `${this.object(ast)}(${v})`
      default:
        return unsupported(ast)
    }
  }

  private ref(f: (u: unknown) => boolean) {
    this.refs.push(f)
    return `refs[${this.refs.length - 1}]`
  }

  /** One function per struct or array schema, however often it is used (a message is in many places). */
  private readonly defined = new Map<AST.AST, string>()

  private define(ast: AST.AST, body: (name: string) => string) {
    const known = this.defined.get(ast)
    if (known !== undefined) return known
    const name = `f${this.functions.length}`
    this.defined.set(ast, name)
    // Reserve the slot first: the body may define functions of its own.
    this.functions.push("")
    this.functions[Number(name.slice(1))] = body(name)
    return name
  }

  private array(ast: AST.TupleType) {
    if (ast.elements.length > 0 || ast.rest.length !== 1) return unsupported(ast)
    const item = ast.rest[0]!.type
    return this.define(
      ast,
      (name) => `function ${name}(a) {
  if (!Array.isArray(a)) return false
  for (let i = 0; i < a.length; i++) { const x = a[i]; if (!(${this.expression(item, "x")})) return false }
  return true
}`
    )
  }

  /**
   * A struct (known keys: an optional one may be absent; present, it must match, as in Effect's `is`,
   * which is exact) or a record (every own key's value), or both. Other keys are let be.
   */
  private object(ast: AST.TypeLiteral) {
    const fields = ast.propertySignatures.map((p) => {
      if (typeof p.name !== "string") return unsupported(ast)
      const key = JSON.stringify(p.name)
      return `  v = o[${key}]
  if (v !== undefined || hasOwn(o, ${key})) { if (!(${this.expression(p.type, "v")})) return false }${p.isOptional ? "" : " else return false"}`
    })
    const records = ast.indexSignatures.map((s) => {
      if (s.parameter._tag !== "StringKeyword") return unsupported(ast)
      return `  for (const k of Object.keys(o)) { v = o[k]; if (!(${this.expression(s.type, "v")})) return false }`
    })
    return this.define(
      ast,
      (name) => `function ${name}(o) {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return false
  let v
${[...fields, ...records].join("\n")}
  return true
}`
    )
  }
}

const literal = (value: AST.LiteralValue): string => (typeof value === "bigint" ? `${value}n` : JSON.stringify(value))

const unsupported = (ast: AST.AST): never => {
  throw new Error(`compiledGuard: a schema of kind ${ast._tag} is not supported (${String(ast)})`)
}
