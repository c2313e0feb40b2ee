/**
 * `resnet-wasm wasi-plan` and `resnet-wasm preprocess`: what the standalone WASI build
 * (wasi/main.ts) needs to classify without JavaScript.
 *
 * Parsing a model's JSON metadata and laying out its memory is the runtime's work, and heavy for
 * AssemblyScript; so the plan is recorded from the runtime itself: a Network is created, loaded and
 * run once with a trace (src/runtime/network.ts), and every operation on its memory is written down
 * with this memory's offsets. The WASI command replays them: it reads each payload from the model
 * file to its place, runs the Winograd weight transforms, reads the input, and runs each layer's
 * kernel calls, moving every pointer by the distance between its memory region and ours.
 *
 * Plan file, little-endian: "RNWP", u32 version 1, u32 operation count, u32 0; then per operation
 * u32 code, u32 n, n f64 values. LABELS is the exception: n bytes of UTF-8 text, one label a line,
 * padded with zeros to a multiple of 8.
 *
 *   code          values
 *   1 MEMORY      base, end            the runtime's memory region [base, end)
 *   2 PARAMETERS  file offset, at, bytes   copy a record's payload from the model file
 *   3 INPUT       at, bytes            the preprocessed input (NHWC uint8) goes here
 *   4 FILL        at, value, bytes     the pad row before a conv
 *   5 CALL        kernel, args...      one whole kernel call: its number and arguments in the
 *                                      kernel table's order (src/runtime/kernels.ts)
 *   6 LOGITS      at, count            the f32 logits after the last call
 *   7 LABELS      (text)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { readModel } from '../format/reader.ts';
import { preprocessQuantized } from '../image/preprocess.ts';
import { toRgbImage } from '../image/sources.ts';
import { KERNEL_NAMES } from '../runtime/kernels.ts';
import { Network, type NetworkOp } from '../runtime/network.ts';
import { type CommandArgs, UsageError } from './command.ts';
import { aboutFile } from './errors.ts';
import { defaultModelPath } from './paths.ts';

const CODES = { memory: 1, parameters: 2, input: 3, fill: 4, call: 5, logits: 6 } as const;
const LABELS = 7;

export async function wasiPlanCommand({ values, positionals }: CommandArgs): Promise<void> {
  if (positionals.length !== 1 || !values.output) throw new UsageError('wasi-plan needs one model file and -o PLAN');
  const plan = await aboutFile(positionals[0], async () => wasiPlan(new Uint8Array(await readFile(positionals[0]))));
  await writeFile(values.output, plan);
}

export async function preprocessCommand({ values, positionals }: CommandArgs): Promise<void> {
  if (positionals.length !== 1 || !values.output) throw new UsageError('preprocess needs one image file and -o FILE');
  const modelPath = values.model ?? defaultModelPath();
  const { header } = await aboutFile(modelPath, async () => readModel(new Uint8Array(await readFile(modelPath))));
  const image = await aboutFile(positionals[0], async () => toRgbImage(new Uint8Array(await readFile(positionals[0]))));
  await writeFile(values.output, preprocessQuantized(image, header.preprocessing, header.tensors[0]));
}

/** Records the plan of a model file: its network loaded and run once on a blank input. */
export async function wasiPlan(file: Uint8Array): Promise<Uint8Array> {
  const { header, payloads } = readModel(file);
  const ops: NetworkOp[] = [];
  const network = await Network.create(
    header,
    payloads.map((p) => p.length),
    { threads: 1 },
    (op) => ops.push(op),
  );
  payloads.forEach((payload, i) => network.setParameters(i, payload));
  const input = header.tensors[0];
  network.run(new Uint8Array(input.h * input.w * input.c));
  network.close();

  const chunks: Uint8Array[] = [];
  const header32 = new Uint32Array([0x504e5752, 1, ops.length + 1, 0]); // "RNWP" little-endian
  chunks.push(new Uint8Array(header32.buffer));
  for (const op of ops) {
    const values =
      op.op === 'memory'
        ? [op.base, op.end]
        : op.op === 'parameters'
          ? [header.records[op.layer].payloadOffset, op.at, op.bytes]
          : op.op === 'input'
            ? [op.at, op.bytes]
            : op.op === 'fill'
              ? [op.at, op.value, op.bytes]
              : op.op === 'call'
                ? [KERNEL_NAMES.indexOf(op.kernel), ...op.args]
                : [op.at, op.count];
    chunks.push(
      new Uint8Array(new Uint32Array([CODES[op.op], values.length]).buffer),
      new Uint8Array(new Float64Array(values).buffer),
    );
  }
  const text = new TextEncoder().encode(header.labels.join('\n'));
  chunks.push(
    new Uint8Array(new Uint32Array([LABELS, text.length]).buffer),
    text,
    new Uint8Array((8 - (text.length % 8)) % 8),
  );
  const plan = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    plan.set(c, at);
    at += c.length;
  }
  return plan;
}
