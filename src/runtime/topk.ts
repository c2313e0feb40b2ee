export interface Prediction {
  index: number;
  label: string;
  /** Softmax probability, for display: the logits are the result. */
  score: number;
}

/** The k most likely classes, best first (ties: lower index first). */
export function topK(logits: Float32Array, labels: string[], k: number): Prediction[] {
  const max = logits.reduce((m, v) => Math.max(m, v), -Infinity);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  return order.slice(0, Math.max(0, k)).map((index) => ({
    index,
    label: labels[index] ?? `class ${index}`,
    score: Math.exp(logits[index] - max) / sum,
  }));
}
