import { transition, initialTransition } from "xstate"
import { taskMachine } from "../src/domain/taskMachine"
const N = 20000
const ev = { type: "ArtifactAdded", at: "x", artifact: { artifactId: "a", parts: [] }, append: false, lastChunk: true } as any
const time = (name: string, f: () => unknown) => { for (let i = 0; i < 2000; i++) f(); const t = performance.now(); for (let i = 0; i < N; i++) f(); console.log(name, ((performance.now() - t) * 1000 / N).toFixed(2), "us") }
const s0 = taskMachine.resolveState({ value: "TASK_STATE_WORKING", context: { artifacts: {} } })
time("resolveState", () => taskMachine.resolveState({ value: "TASK_STATE_WORKING", context: { artifacts: {} } }))
time("can", () => s0.can(ev))
time("transition", () => transition(taskMachine, s0, ev))
time("initialTransition", () => initialTransition(taskMachine))
import { createActor } from "xstate"
const self = createActor(taskMachine)
const scope: any = { self, defer: () => {}, id: "", logger: () => {}, sessionId: "", stopChild: () => {}, system: self.system, emit: () => {}, actionExecutor: () => {} }
time("machine.transition w/ scope", () => taskMachine.transition(s0, ev, scope))
const a = taskMachine.transition(s0, ev, scope), b = transition(taskMachine, s0, ev)[0]
console.log(JSON.stringify(a.value) === JSON.stringify(b.value), JSON.stringify(a.context) === JSON.stringify(b.context), a.status, b.status)
