import { v7 } from "uuid"

/**
 * A new task or context id: a UUIDv7 (RFC 9562), whose leading bits are the creation time in milliseconds.
 * Ids made one after another sort together, so a new task's rows and index entries (the task's key, its
 * events' `(task_id, version)`, the owner+context index) land on the same few B-tree pages as the tasks
 * just before it, instead of on a random page each: the writer's COMMIT writes fewer pages, and a large
 * store keeps its hot pages in cache. The 74 bits after the time are random, so ids stay unguessable
 * (access is checked by owner anyway); what an id tells about its task's creation time, the task shows too.
 */
export const timeOrderedId = (): string => v7()
