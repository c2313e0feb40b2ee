import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ResnetWasmError } from '../errors.ts';
import type { DecoderChoice } from '../image/decoders.ts';
import { checkDecoder, checkThreads, checkTop, fromText } from '../options/validate.ts';
import { loadModel, type Model } from '../runtime/model.ts';
import type { StreamSummary } from '../stream/frames.ts';
import { type CommandArgs, UsageError } from './command.ts';
import { aboutFile, isFileError } from './errors.ts';
import { defaultModelPath } from './paths.ts';

interface Options {
  top: number;
  decoder: DecoderChoice;
}

/** `resnet-wasm classify` (options in commands.ts). */
export async function run({ values, flags, positionals }: CommandArgs): Promise<void> {
  if (positionals.length === 0 && values.stream === undefined)
    throw new UsageError('classify needs at least one image file, or --stream -');
  const top = checkTop(fromText(values.top!));
  const decoder = checkDecoder(values.decoder);
  const threads = checkThreads(fromText(values.threads!));
  const path = values.model ?? existingDefaultModel();
  const model = await aboutFile(path, () => loadModel(path, { threads }));
  try {
    if (values.stream !== undefined) return await classifyStream(model, values.stream, { top, decoder });
    for (const file of positionals) await classifyFile(model, file, { top, decoder }, flags.json);
  } finally {
    model.dispose();
  }
}

async function classifyFile(model: Model, file: string, options: Options, json: boolean): Promise<void> {
  try {
    const result = await model.classify(new Uint8Array(await readFile(file)), options);
    const unknown = result.unknown === undefined ? {} : { unknown: result.unknown };
    print(
      json,
      { file, top: result.top, ms: round(result.ms, 1), ...unknown },
      () => (result.unknown ? `${file}  unknown\n` : '') + formatText(file, result.top, result.ms),
    );
  } catch (error) {
    if (!(error instanceof ResnetWasmError) && !isFileError(error)) throw error;
    process.exitCode = 1;
    const message = (error as Error).message;
    if (json) print(true, { file, error: message }, () => '');
    else process.stderr.write(`resnet-wasm: ${file}: ${message}\n`);
  }
}

/**
 * `--stream FILE|-`: MJPEG from a file, a FIFO or stdin; a JSON line per classified frame, then the
 * summary. A stream in which no frame was found fails, naming the likely cause.
 */
async function classifyStream(model: Model, source: string, options: Options): Promise<void> {
  const input = source === '-' ? process.stdin : createReadStream(source);
  const name = source === '-' ? 'stdin' : source;
  const stream = model.classifyStream(input, options);
  for await (const { frame, t, dropped, top, ms } of stream) {
    process.stdout.write(`${JSON.stringify({ frame, t, dropped, top, ms: round(ms, 1) })}\n`);
  }
  const { summary } = stream;
  process.stdout.write(`${JSON.stringify({ summary })}\n`);
  if (summary.frames === 0) throw new ResnetWasmError(noFrames(name, summary));
}

function noFrames(name: string, summary: StreamSummary): string {
  if (summary.bytes === 0) return `${name}: the stream ended before any byte arrived`;
  return (
    `${name}: no JPEG frame in ${summary.bytes} bytes: the stream is not MJPEG (an H.264 camera, or another device?); ` +
    `convert it with ffmpeg: ffmpeg -i INPUT -f mjpeg - | resnet-wasm classify --stream -`
  );
}

export function existingDefaultModel(): string {
  const path = defaultModelPath();
  if (!existsSync(path)) {
    throw new ResnetWasmError(`no default model at ${path}: build it with "npm run build:model", or pass --model FILE`);
  }
  return path;
}

function formatText(file: string, top: { index: number; label: string; score: number }[], ms: number): string {
  const lines = top.map((p) => `  ${(100 * p.score).toFixed(1).padStart(5)}%  ${p.label} (${p.index})`);
  return `${file}  (${ms.toFixed(1)} ms)\n${lines.join('\n')}`;
}

function print(json: boolean | undefined, object: object, text: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(object) : text()}\n`);
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}
