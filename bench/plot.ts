// `npm run bench -- --plot`: the medians as a horizontal bar chart, one bar per configuration, with
// its p10–p90 spread and the 1-thread SIMD floor as a dashed line. Plain SVG, written by hand.
import { escapeXml, tickStep } from '../src/svg.ts';

export interface Bar {
  label: string;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  /** Drawn in the accent colour. */
  ours: boolean;
}

const LABEL_WIDTH = 300;
const PLOT_WIDTH = 440;
const BAR_HEIGHT = 22;
const GAP = 8;
const TOP = 48;
const BOTTOM = 36;

export function barChart(bars: Bar[], floorMs: number, title: string): string {
  const longest = Math.max(floorMs, ...bars.map((b) => b.p90Ms));
  const step = tickStep(longest / 5);
  const max = Math.ceil(longest / step) * step;
  const x = (ms: number) => LABEL_WIDTH + (ms / max) * PLOT_WIDTH;
  const height = TOP + bars.length * (BAR_HEIGHT + GAP) + BOTTOM;
  const axisY = height - BOTTOM;
  const ticks = Array.from({ length: Math.round(max / step) + 1 }, (_, i) => i * step);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${LABEL_WIDTH + PLOT_WIDTH + 80}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...ticks.map(
      (t) =>
        `<line x1="${x(t)}" y1="${TOP - 6}" x2="${x(t)}" y2="${axisY}" stroke="#ddd"/><text x="${x(t)}" y="${axisY + 16}" text-anchor="middle" fill="#555">${+t.toFixed(3)}</text>`,
    ),
    `<text x="${LABEL_WIDTH + PLOT_WIDTH / 2}" y="${axisY + 32}" text-anchor="middle" fill="#555">median latency, ms (lower is better; whiskers p10–p90)</text>`,
    ...bars.map((b, i) => {
      const y = TOP + i * (BAR_HEIGHT + GAP);
      const mid = y + BAR_HEIGHT / 2;
      return [
        `<text x="${LABEL_WIDTH - 8}" y="${mid + 4}" text-anchor="end">${escapeXml(b.label)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${x(b.medianMs) - LABEL_WIDTH}" height="${BAR_HEIGHT}" fill="${b.ours ? '#d9480f' : '#868e96'}"/>`,
        `<line x1="${x(b.p10Ms)}" y1="${mid}" x2="${x(b.p90Ms)}" y2="${mid}" stroke="black"/>`,
        `<text x="${x(b.p90Ms) + 6}" y="${mid + 4}">${round(b.medianMs)}</text>`,
      ].join('');
    }),
    `<line x1="${x(floorMs)}" y1="${TOP - 6}" x2="${x(floorMs)}" y2="${axisY}" stroke="#1c7ed6" stroke-dasharray="5,4"/>`,
    `<text x="${x(floorMs) + 4}" y="${TOP - 10}" fill="#1c7ed6">dot_i16x8_s floor, 1 thread: ${round(floorMs)} ms</text>`,
    '</svg>',
  ];
  return `${parts.join('\n')}\n`;
}

function round(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}
