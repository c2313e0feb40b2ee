/**
 * Which frame is classified next when frames come faster than inference: each key (a camera) keeps
 * only its newest waiting frame, the older one is handed back as dropped, and keys are served
 * round-robin, in the order their waiting frame arrived, so one busy camera cannot starve another.
 * At most one frame per key waits: the memory held is bounded by the number of cameras.
 */
export class FrameScheduler<T> {
  // A Map iterates in insertion order: replacing a value keeps its key's place in the round,
  // taking it deletes the key, and the key's next frame joins the back of the round.
  private readonly waiting = new Map<string, T>();

  get size(): number {
    return this.waiting.size;
  }

  /** Queues `frame` as its key's newest; returns the older waiting frame it replaces, if any. */
  offer(key: string, frame: T): T | undefined {
    const replaced = this.waiting.get(key);
    this.waiting.set(key, frame);
    return replaced;
  }

  /** The frame of the key first in the round, or undefined when nothing waits. */
  take(): T | undefined {
    const first = this.waiting.entries().next();
    if (first.done) return undefined;
    this.waiting.delete(first.value[0]);
    return first.value[1];
  }
}
