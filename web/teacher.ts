// Teach mode, in the worker: the examples the page adds (a class name and a photo or camera frame)
// are embedded, a head is taught on them after each addition (deterministic: the same examples give
// the same head) and the classes answer from then on. The examples' embeddings are kept in the
// Cache API, so a reload, offline too, teaches the same head again; the taught model downloads as
// a complete .rnw.
import { type Model, teach } from '../src/index.ts';

const CACHE = 'resnet-wasm-taught';
const KEY = 'examples.json';

interface Example {
  label: string;
  embedding: Float32Array;
}

export class Teacher {
  private examples: Example[] = [];
  /** The base model with the taught head, once two classes have examples. */
  taught: Model | null = null;

  constructor(private readonly base: Model) {}

  /** Teaches again from the examples a previous visit kept; false when there are none. */
  async restore(): Promise<boolean> {
    const saved = await (await caches.open(CACHE)).match(KEY);
    if (!saved) return false;
    const examples: { label: string; embedding: number[] }[] = await saved.json();
    this.examples = examples.map(({ label, embedding }) => ({ label, embedding: Float32Array.from(embedding) }));
    await this.retrain();
    return true;
  }

  async add(label: string, embedding: Float32Array): Promise<void> {
    this.examples.push({ label, embedding });
    await this.retrain();
    const kept = this.examples.map((e) => ({ label: e.label, embedding: Array.from(e.embedding) }));
    await (await caches.open(CACHE)).put(
      KEY,
      new Response(JSON.stringify(kept), { headers: { 'content-type': 'application/json' } }),
    );
  }

  async forget(): Promise<void> {
    this.examples = [];
    this.taught = null;
    await caches.delete(CACHE);
  }

  /** Each class and its count of examples, in the order they were first named. */
  classes(): { label: string; count: number }[] {
    const counts = new Map<string, number>();
    for (const { label } of this.examples) counts.set(label, (counts.get(label) ?? 0) + 1);
    return [...counts].map(([label, count]) => ({ label, count }));
  }

  private async retrain(): Promise<void> {
    this.taught = this.classes().length >= 2 ? this.base.withHead(await teach(this.base, this.examples)) : null;
  }
}
