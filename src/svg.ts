// Small helpers for the hand-written SVG charts (bench/plot.ts, src/lesion/plot.ts).

/** 1, 2 or 5 times a power of ten, at least `v`: round tick values. */
export function tickStep(v: number): number {
  const power = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * power).find((n) => n >= v)!;
}

/** Text as SVG character data. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
