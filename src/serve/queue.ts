/** A first-in first-out queue with a fixed capacity: what does not fit is refused, never buffered. */
export class BoundedQueue<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length;
  }

  /** Whether `count` more items would fit now. */
  hasRoom(count: number): boolean {
    return this.items.length + count <= this.capacity;
  }

  /** Adds at the back; false (and nothing added) when full. */
  offer(item: T): boolean {
    if (!this.hasRoom(1)) return false;
    this.items.push(item);
    return true;
  }

  take(): T | undefined {
    return this.items.shift();
  }

  /** Takes an item out wherever it is (a request given up while waiting); false if it is not there. */
  remove(item: T): boolean {
    const index = this.items.indexOf(item);
    if (index < 0) return false;
    this.items.splice(index, 1);
    return true;
  }

  /** Empties the queue, handing back what was in it. */
  drain(): T[] {
    return this.items.splice(0);
  }
}
