/**
 * `resnet-wasm bench --cold`: how long a fresh process takes from its start to its first top-5,
 * with the model streamed from disk. Each run spawns this same CLI as a child (marked by an
 * environment variable), which loads the model, classifies one frame, prints the top-5 and exits;
 * the parent times the spawn to the arrival of that line.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadModel } from '../runtime/model.ts';
import { UsageError } from './command.ts';
import { defaultModelPath } from './paths.ts';
import { median } from './statistics.ts';

const CHILD_MARK = 'RESNET_WASM_COLD_CHILD';
const RUNS = 5;

export interface ColdResult {
  model: string;
  /** Median of the runs, process start to first top-5. */
  cold_ms: number;
  runs_ms: number[];
}

export async function coldCommand(options: { model?: string; json?: boolean }): Promise<void> {
  const model = options.model ?? defaultModelPath();
  if (process.env[CHILD_MARK] === '1') return firstTopFive(model);
  if (!existsSync(model))
    throw new UsageError(`no model at ${model}: build it with "npm run build:model", or pass --model FILE`);
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await timeChild(model));
  const result: ColdResult = { model, cold_ms: round1(median(runs)), runs_ms: runs.map(round1) };
  process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : formatCold(result));
}

/** The child's whole job: stream the model from disk, classify a frame, print the top-5. */
async function firstTopFive(file: string): Promise<void> {
  const model = await loadModel(file);
  const { top } = await model.classify(syntheticFrame(320, 240), { top: 5 });
  process.stdout.write(`${JSON.stringify({ top })}\n`);
}

/** A smooth colour gradient: a fixed, decode-free input. */
function syntheticFrame(width: number, height: number) {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const x = i % width;
    const y = Math.floor(i / width);
    data.set([(255 * x) / width, (255 * y) / height, (x + y) & 255], 3 * i);
  }
  return { data, width, height };
}

/** Milliseconds from spawning a child to the line with its top-5. */
function timeChild(model: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const args = [...process.execArgv, process.argv[1], 'bench', '--cold', '--model', model];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, [CHILD_MARK]: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let elapsed: number | undefined;
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      if (elapsed === undefined && stdout.includes('\n')) elapsed = performance.now() - start;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && elapsed !== undefined && JSON.parse(stdout).top.length > 0) resolve(elapsed);
      else reject(new Error(`the cold-start child failed (exit code ${code}): ${stderr.trim()}`));
    });
  });
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function formatCold(r: ColdResult): string {
  return `cold start (process start to first top-5, model streamed from ${r.model}): median ${r.cold_ms} ms over ${r.runs_ms.length} runs (${r.runs_ms.join(', ')} ms)\n`;
}
