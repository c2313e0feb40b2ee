// The lesion study as the paper draws it, with time: one point per block, the time its removal
// saves (x) against the top-1 agreement it costs (y). Plain SVG, written by hand.
import { escapeXml, tickStep } from '../svg.ts';
import type { StudyResult } from './study.ts';

const LEFT = 64;
const WIDTH = 560;
const HEIGHT = 340;
const TOP = 48;

export function lesionPlot(study: StudyResult): string {
  const points = study.rows.map((row) => ({ ...row, cost: 100 * (1 - row.agreement) }));
  const xStep = tickStep(Math.max(...points.map((p) => p.msSaved), 0.1) / 5);
  const yStep = tickStep(Math.max(...points.map((p) => p.cost), 1) / 5);
  const xMax = Math.ceil(Math.max(...points.map((p) => p.msSaved)) / xStep) * xStep || xStep;
  const yMax = Math.ceil(Math.max(...points.map((p) => p.cost)) / yStep) * yStep || yStep;
  const x = (ms: number) => LEFT + (ms / xMax) * WIDTH;
  const y = (cost: number) => TOP + HEIGHT - (cost / yMax) * HEIGHT;
  const ticks = (step: number, max: number) =>
    Array.from({ length: Math.round(max / step) + 1 }, (_, i) => +(i * step).toFixed(6));
  const labelY = unclutteredLabels(points.map((p) => ({ x: x(p.msSaved), y: y(p.cost) - 5 })));
  const title = `${study.architecture}: each residual block removed in turn (${study.photos} photos, full network ${study.fullMs.toFixed(0)} ms)`;
  return `${[
    `<svg xmlns="http://www.w3.org/2000/svg" width="${LEFT + WIDTH + 80}" height="${TOP + HEIGHT + 56}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...ticks(xStep, xMax).map(
      (t) =>
        `<line x1="${x(t)}" y1="${TOP}" x2="${x(t)}" y2="${y(0)}" stroke="#ddd"/><text x="${x(t)}" y="${y(0) + 16}" text-anchor="middle" fill="#555">${t}</text>`,
    ),
    ...ticks(yStep, yMax).map(
      (t) =>
        `<line x1="${LEFT}" y1="${y(t)}" x2="${x(xMax)}" y2="${y(t)}" stroke="#ddd"/><text x="${LEFT - 6}" y="${y(t) + 4}" text-anchor="end" fill="#555">${t}</text>`,
    ),
    `<text x="${LEFT + WIDTH / 2}" y="${y(0) + 34}" text-anchor="middle" fill="#555">time saved, ms (the removed layers' fastest runs in the full network)</text>`,
    `<text x="14" y="${TOP + HEIGHT / 2}" text-anchor="middle" fill="#555" transform="rotate(-90 14 ${TOP + HEIGHT / 2})">top-1 disagreement with the full network, %</text>`,
    `<text x="${x(xMax)}" y="${TOP - 8}" text-anchor="end"><tspan fill="#1c7ed6">● identity block removed</tspan>  <tspan fill="#d9480f">● downsampling block: its shortcut alone</tspan></text>`,
    ...points.map((p, i) => {
      const colour = p.downsampling ? '#d9480f' : '#1c7ed6';
      return `<circle cx="${x(p.msSaved)}" cy="${y(p.cost)}" r="4" fill="${colour}"/><text x="${x(p.msSaved) + 6}" y="${labelY[i]}" fill="${colour}">${escapeXml(p.block)}</text>`;
    }),
    '</svg>',
  ].join('\n')}\n`;
}

/** Label baselines, each moved down a line until it clears the labels already placed near it. */
function unclutteredLabels(anchors: { x: number; y: number }[]): number[] {
  const placed: { x: number; y: number }[] = [];
  const order = anchors.map((_, i) => i).sort((a, b) => anchors[a].y - anchors[b].y);
  const result = new Array<number>(anchors.length);
  for (const i of order) {
    let y = anchors[i].y;
    while (placed.some((p) => Math.abs(p.x - anchors[i].x) < 48 && Math.abs(p.y - y) < 13)) y += 13;
    placed.push({ x: anchors[i].x, y });
    result[i] = y;
  }
  return result;
}
