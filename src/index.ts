/**
 * a2a-ledger as a library: a durable A2A task engine inside an application's own process.
 *
 * - Node applications without Effect: {@link createLedger}, a Promise API over the engine, with an agent
 *   written with Promises ({@link PromiseAgent}).
 * - Effect programs: {@link layer} (the engine on a store, as a Layer providing {@link TaskEngine}),
 *   {@link serverLayer} (the A2A HTTP server too), {@link routesLayer} and {@link httpApp} (the A2A routes,
 *   mounted in the application's own server), and agents written as Effects ({@link Agent}).
 *
 * docs/embedding.md walks through both. Everything not exported here is internal and may change.
 *
 * @packageDocumentation
 */

// The Promise API.
export {
  createLedger,
  type Ledger,
  type LedgerOptions,
  type Listening,
  type ListenOptions,
  type ListOptions,
  type SendInput,
  type SendOptions,
  type StreamResponse,
  type TaskList
} from "./ledger/createLedger.js"
export { type PromiseAgent, type PromiseAgentContext, TurnAbortedError, type TurnResult } from "./ledger/PromiseAgent.js"
export {
  InvalidParamsError,
  LedgerClosedError,
  LedgerError,
  RateLimitedError,
  StoreUnavailableError,
  TaskNotCancelableError,
  TaskNotFoundError,
  UnsupportedOperationError
} from "./ledger/errors.js"

// A2A's data, as the engine stores and serves it (v1.0 ProtoJSON shapes).
export type { Artifact, JsonValue, Message, Metadata, Part, Role } from "./domain/Message.js"
export type { Task, TaskStatus } from "./domain/TaskView.js"
export { isInterrupted, isTerminal, type TaskState, TaskStates } from "./domain/TaskState.js"

// Agents written as Effects.
export {
  type Agent,
  type AgentContext,
  AgentEmitError,
  agentMessage,
  type AgentSkill,
  type DelegateOptions,
  DelegationFailed,
  type ExtendedCard,
  type DelegationResult,
  Outcome,
  StepFailed,
  type StepOptions,
  type TurnOutcome
} from "./agent/Agent.js"
export type { DelegationCredential, DelegationOptions } from "./engine/RemoteAgents.js"

// The engine for Effect programs.
export {
  anonymous,
  type Caller,
  type FollowOptions,
  type SendInput as EngineSendInput,
  type SendOutcome,
  TaskEngine,
  type WatchItem,
  type WatchOptions
} from "./engine/TaskEngine.js"
export type { TaskSnapshot } from "./domain/Task.js"
export type { TaskEvent } from "./domain/TaskEvent.js"
export type { Committed } from "./engine/EventHub.js"
export type { Feed, FollowSink } from "./engine/Follower.js"
export type { StoreHealth } from "./engine/TaskWriter.js"
export type { ListPage, ListQuery } from "./projections/TaskReadModel.js"
export {
  type EngineError,
  InvalidParams,
  PushConfigNotFound,
  RateLimited,
  StoreFailure,
  TaskNotCancelable,
  TaskNotFound,
  UnsupportedOperation
} from "./engine/errors.js"
export type { Idempotency, RecoveryPolicy } from "./engine/EngineConfig.js"
export { type FlowControlOptions, type Limits as FlowControlLimits, priorityKey } from "./engine/FlowControl.js"
export type { PushConfig, PushFormat, PushOptions } from "./push/PushConfig.js"
export type { EmbeddedOptions } from "./layers/Embedded.js"
export type { ServeOptions } from "./layers/Server.js"
export { A2AHost, A2ARoutes, EngineStartError, httpApp, layer, type RoutesOptions, routesLayer, serverLayer } from "./layers/Library.js"
export type { ApiKey, AuthOptions, JwtOptions } from "./server/Auth.js"
export type { AgentHost } from "./server/AgentHosts.js"
export type { SqliteSynchronous } from "./eventlog/Store.js"

// Signing: the server's key (`signing` of the server options), signed cards, and signed webhooks' receiving side.
export type { SigningOptions } from "./signing/SigningKey.js"
export {
  CardSignatureInvalid,
  type CardSignature,
  type CardSigningKey,
  canonicalCard,
  type KeySource,
  signCard,
  verifyCard
} from "./protocol/cardSignature.js"
export {
  type NotificationCheck,
  type NotificationHeaders,
  NotificationRejected,
  type ReplayGuard,
  replayGuard,
  verifyNotification
} from "./signing/verifyNotification.js"
