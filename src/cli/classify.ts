import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { loadModel } from '../runtime/model.ts';
import { ResnetWasmError } from '../errors.ts';
import { defaultModelPath } from './paths.ts';
import { isFileError } from './errors.ts';
import { classifyStream } from './stream.ts';
import type { DecoderChoice } from '../image/decoders.ts';

export async function classifyCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      top: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
      stream: { type: 'string' },
      decoder: { type: 'string', default: 'auto' },
    },
  });
  if (positionals.length === 0 && values.stream === undefined) throw new UsageError('classify needs at least one image file, or --stream -');
  const top = positiveInteger(values.top, '--top');
  const decoder = decoderChoice(values.decoder!);
  const model = await loadModel(values.model ?? existingDefaultModel());
  if (values.stream !== undefined) {
    // MJPEG from stdin or a file: JSON lines, then a summary line (src/cli/stream.ts).
    process.stdout.write(JSON.stringify({ summary: await classifyStream(model, values.stream, top) }) + '\n');
    return model.dispose();
  }
  for (const file of positionals) {
    try {
      const result = await model.classify(new Uint8Array(await readFile(file)), { top, decoder });
      const unknown = result.unknown === undefined ? {} : { unknown: result.unknown };
      print(values.json, { file, top: result.top, ms: round(result.ms, 1), ...unknown }, () => (result.unknown ? `${file}  unknown\n` : '') + formatText(file, result.top, result.ms));
    } catch (error) {
      if (!(error instanceof ResnetWasmError) && !isFileError(error)) throw error;
      process.exitCode = 1;
      const message = (error as Error).message;
      if (values.json) print(true, { file, error: message }, () => '');
      else process.stderr.write(`resnet-wasm: ${file}: ${message}\n`);
    }
  }
  model.dispose();
}

/** sharp where it loads (`auto`), or one of them by name: `js` gives the same pixels on every platform. */
function decoderChoice(text: string): DecoderChoice {
  if (text === 'auto' || text === 'sharp' || text === 'js') return text;
  throw new UsageError(`--decoder must be auto, sharp or js, not ${JSON.stringify(text)}`);
}

export class UsageError extends ResnetWasmError {
  override name = 'UsageError';
}

export function positiveInteger(text: string | undefined, option: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${option} must be a positive integer, got "${text}"`);
  return n;
}

export function existingDefaultModel(): string {
  const path = defaultModelPath();
  if (!existsSync(path)) {
    throw new UsageError(`no default model at ${path}: build it with "npm run build:model", or pass --model FILE`);
  }
  return path;
}

function formatText(file: string, top: { index: number; label: string; score: number }[], ms: number): string {
  const lines = top.map((p) => `  ${(100 * p.score).toFixed(1).padStart(5)}%  ${p.label} (${p.index})`);
  return `${file}  (${ms.toFixed(1)} ms)\n${lines.join('\n')}`;
}

function print(json: boolean | undefined, object: object, text: () => string): void {
  process.stdout.write((json ? JSON.stringify(object) : text()) + '\n');
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}
