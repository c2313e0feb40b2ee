// The Markdown `npm run bench` prints: the host's state during the run, a table per model, the
// contention table, the shipped sizes. bench/README.md explains each column.
import type { HostSummary, Machine } from './host.ts';
import type { Condition } from './neighbour.ts';
import type { Peer } from './peers/measure.ts';
import type { Spread } from './rounds.ts';
import type { ShippedSizes } from './shipped.ts';

export type Precision = 'int8' | 'fp32';

export interface Config {
  peer: Peer;
  precision: Precision;
  threads: number;
}

export interface Row extends Config {
  model: string;
  condition: Condition;
  /** Of all timed runs, every round's. */
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  gmacPerS: number;
  /** Of the floor of the cores used: threads x the 1-thread floor. */
  floorPercent: number;
  /** Per round: this row's median over onnxruntime-web int8's at the same thread count and condition. */
  vsOrtWebInt8: Spread | null;
  /** Per round: over the same runtime's median with half the threads, same condition. */
  vsHalfThreads: Spread | null;
  /** null: no stretch that round. */
  roundMediansMs: (number | null)[];
  peakRssMiB: number;
  loadMs: number;
  /** Median over the stretches. */
  cpuPerWall: number;
  /** Logits vs onnxruntime-node at the same precision (fp32: native fp32; int8: its QDQ run on 1 thread). */
  cosine: number | null;
  timesMs: number[];
}

export interface Table {
  title: string;
  model: string;
  macs: number;
  /** null: the contention table, which has no floor column. */
  floorMs: number | null;
  rows: Row[];
  /** Whether ours gave the same logits in every stretch of this table's models; null: fewer than 2. */
  identicalLogits: boolean | null;
}

export interface Report {
  machine: Machine;
  host: HostSummary;
  rounds: number;
  stretchMs: number;
  floorGmacPerS: number;
  baselineRssMiB: number;
  tables: Table[];
  failed: (Config & { model: string; error: string })[];
  sizes: ShippedSizes;
  quick: boolean;
}

const LABELS: Record<Peer, string> = {
  'resnet-wasm': 'resnet-wasm',
  'onnxruntime-web': 'onnxruntime-web (wasm)',
  'tfjs-wasm': 'tfjs-backend-wasm',
  'onnxruntime-node': 'onnxruntime-node (native)',
};

export function rowLabel({ peer, precision, threads }: Config): string {
  return `${LABELS[peer]} ${precision}, ${threads} thread${threads > 1 ? 's' : ''}`;
}

const fixed = (v: number | null, digits: number) => (v === null || Number.isNaN(v) ? '–' : v.toFixed(digits));

/** "0.41 (0.38–0.45)": the median of the rounds' ratios, the lowest and highest. */
function ratio(s: Spread | null): string {
  return s ? `${fixed(s.median, 2)} (${fixed(s.min, 2)}–${fixed(s.max, 2)})` : '–';
}

function markdownTable(header: string[], align: ('l' | 'r')[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '--:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

function hostLines({ machine, host, rounds, stretchMs, quick }: Report): string[] {
  const pct = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)}%`);
  const range = (s: Spread | null, unit: string) =>
    s ? `${s.min.toFixed(unit ? 1 : 2)}${unit}–${s.max.toFixed(unit ? 1 : 2)}${unit}` : '–';
  return [
    `${machine.cpu}${machine.simd.length ? ` (${machine.simd.join(', ')})` : ''}, ${machine.cores} cores${machine.virtual ? ' (a VM)' : ''}, Node ${machine.node}.` +
      (quick ? ' --quick: a smoke run, not a measurement.' : ''),
    `Host during the run: steal ${pct(host.stealPercent)} of all CPU time (per round ${range(host.perRound.stealPercent, '%')}), ` +
      `busy ${pct(host.busyPercent)} (per round ${range(host.perRound.busyPercent, '%')}), ` +
      `of which not this benchmark's processes ${pct(host.othersPercent)} (per round ${range(host.perRound.othersPercent, '%')}), ` +
      `load average ${host.loadAverage.start.toFixed(2)} at the start, ${host.loadAverage.end.toFixed(2)} at the end (per round ${range(host.perRound.loadAverage1, '')}).`,
    `${rounds} interleaved rounds; in each, every configuration ran one untimed run and then ${stretchMs ? `at least ${stretchMs / 1000} s of runs` : 'a few runs'}.`,
  ];
}

function modelTable(table: Table, r: Report): string[] {
  const floorMs = table.floorMs!;
  return [
    `### ${table.title}`,
    '',
    `Floor: i32x4.dot_i16x8_s + i32x4.add from L1 at ${r.floorGmacPerS.toFixed(1)} GMAC/s on 1 thread, so ${table.model} ≥ ${floorMs.toFixed(1)} ms; % floor is of threads × that rate.`,
    '',
    ...markdownTable(
      [
        'runtime',
        'precision',
        'threads',
        'median ms',
        'p10',
        'p90',
        'GMAC/s',
        '% floor',
        '× ort-web int8 (rounds: median, min–max)',
        'peak RSS MiB',
        'load ms',
        'cores busy',
      ],
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      table.rows.map((row) => [
        LABELS[row.peer],
        row.precision,
        String(row.threads),
        fixed(row.medianMs, 1),
        fixed(row.p10Ms, 1),
        fixed(row.p90Ms, 1),
        fixed(row.gmacPerS, 1),
        fixed(row.floorPercent, 0),
        ratio(row.vsOrtWebInt8),
        fixed(row.peakRssMiB, 0),
        fixed(row.loadMs, 0),
        fixed(row.cpuPerWall, 2),
      ]),
    ),
    '',
    `Same network everywhere: the lowest logits cosine against onnxruntime-node at the same precision is ` +
      `${(['int8', 'fp32'] as const).map((p) => `${fixed(Math.min(...table.rows.filter((row) => row.precision === p).map((row) => row.cosine ?? NaN)), 4)} (${p})`).join(', ')}.` +
      identical(table),
  ];
}

function contentionTable(table: Table): string[] {
  return [
    `### ${table.title}`,
    '',
    ...markdownTable(
      [
        'beside',
        'runtime',
        'threads',
        'median ms',
        'p10',
        'p90',
        '× ort-web int8 (rounds: median, min–max)',
        '× half the threads (rounds)',
        'cores busy',
      ],
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      table.rows.map((row) => [
        row.condition === 'quiet' ? 'nothing' : row.condition,
        LABELS[row.peer],
        String(row.threads),
        fixed(row.medianMs, 1),
        fixed(row.p10Ms, 1),
        fixed(row.p90Ms, 1),
        ratio(row.vsOrtWebInt8),
        ratio(row.vsHalfThreads),
        fixed(row.cpuPerWall, 2),
      ]),
    ),
    '',
    'busy core: a neighbour process spinning on one core. memory stream: another one reading and writing a 256 MiB buffer ' +
      '(8x the L3 here) a cache line at a time. × half the threads: over the same runtime with half the threads, in the same round and beside the same neighbours.' +
      identical(table),
  ];
}

function identical(table: Table): string {
  if (table.identicalLogits === null) return '';
  return table.identicalLogits
    ? ' resnet-wasm gave bit-identical logits in every stretch: every thread count, round and neighbour.'
    : ' **resnet-wasm gave different logits in different stretches** (thread counts, rounds or neighbours): a bug.';
}

export function report(r: Report): string {
  return [
    ...hostLines(r),
    '',
    ...r.tables.flatMap((t) => [...(t.floorMs === null ? contentionTable(t) : modelTable(t, r)), '']),
    ...(r.failed.length ? [...r.failed.map((f) => `Failed: ${f.model} ${rowLabel(f)}: ${f.error}`), ''] : []),
    `× ort-web int8: per round, a row's median over onnxruntime-web int8's at the same thread count; the median of those ratios over the rounds, with the lowest and highest. ` +
      `Peak RSS: the high-water mark of the configuration's own process; Node + tsx alone peak at ${r.baselineRssMiB.toFixed(0)} MiB. ` +
      'Cores busy: process CPU time over wall time during the timed runs.',
    '',
    ...markdownTable(
      ['shipped to a browser', 'bytes', 'gzip'],
      ['l', 'r', 'r'],
      Object.entries(r.sizes).map(([name, s]) => [
        name,
        s.bytes.toLocaleString('en'),
        s.gzipBytes.toLocaleString('en'),
      ]),
    ),
  ].join('\n');
}
