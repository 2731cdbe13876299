/**
 * The A2A content types the domain reasons about (a Part, a Message, an
 * Artifact), in their v1.0 ProtoJSON shape. They are plain data: the protocol
 * layer validates them at the edge, the domain only stores and folds them.
 */
export type JsonValue = null | boolean | number | string | ReadonlyArray<JsonValue> | { readonly [k: string]: JsonValue }
export type Metadata = { readonly [k: string]: JsonValue }

export interface Part {
  readonly text?: string
  readonly raw?: string
  readonly url?: string
  readonly data?: JsonValue
  readonly filename?: string
  readonly mediaType?: string
  readonly metadata?: Metadata
}

export type Role = "ROLE_USER" | "ROLE_AGENT"

export interface Message {
  readonly messageId: string
  readonly contextId?: string
  readonly taskId?: string
  readonly role: Role
  readonly parts: ReadonlyArray<Part>
  readonly metadata?: Metadata
  readonly extensions?: ReadonlyArray<string>
  readonly referenceTaskIds?: ReadonlyArray<string>
}

export interface Artifact {
  readonly artifactId: string
  readonly name?: string
  readonly description?: string
  readonly parts: ReadonlyArray<Part>
  readonly metadata?: Metadata
  readonly extensions?: ReadonlyArray<string>
}

/** The text of a message's text parts, joined: what agents usually read. */
export const textOf = (message: Pick<Message, "parts">): string => message.parts.flatMap((p) => (p.text !== undefined ? [p.text] : [])).join("\n")
