import { classifyCommand } from './classify.ts';
import { benchCommand } from './bench.ts';
import { convertCommand } from './convert.ts';
import { wasiPlanCommand, preprocessCommand } from './wasi-plan.ts';
import { serveCommand } from './serve.ts';
import { teachCommand, embedCommand } from './teach.ts';
import { ResnetWasmError } from '../errors.ts';
import { isFileError } from './errors.ts';

const USAGE = `resnet-wasm — int8 ResNet image classification in WebAssembly SIMD

Usage:
  resnet-wasm classify <image...> [--model FILE] [--top K] [--json] [--decoder auto|sharp|js]
  resnet-wasm classify --stream - [--model FILE] [--top K]    MJPEG on stdin: a JSON line per frame
  resnet-wasm bench [--model FILE] [--threads N] [--runs N] [--json] [--profile] [--cold] [--photo FILE]
  resnet-wasm convert <model.onnx | model.json> -o <out.rnw> [--calibrate DIR]
              [--calibration minmax|percentile|entropy] [--ranges FILE] [--save-ranges FILE]
              [--preprocessing torch|caffe|tf] [--labels FILE]
  resnet-wasm wasi-plan <model.rnw> -o <model.plan>     for the WASI build (build/resnet-wasi.wasm)
  resnet-wasm preprocess <image> -o <input.u8> [--model FILE]
  resnet-wasm serve [--port 8080] [--host 127.0.0.1] [--model FILE] [--workers N] [--queue N]
              [--timeout MS] [--body-timeout MS] [--max-body BYTES] [--max-pixels N] [--max-batch N]
              [--max-connections N]
              HTTP: POST /v1/classify, /v1/classify/batch, /v1/embed; GET /healthz, /readyz, /metrics
  resnet-wasm teach <DIR> -o <out.rnw> [--model FILE] [--force] [--unknown]
              DIR holds one sub-folder of photos per class; writes the model with a taught head
  resnet-wasm embed <image...> [--model FILE] [--json]    each photo's embedding (global average pool)

Options:
  --model FILE   a .rnw model file (default: the embedded ImageNet model)
  --top K        how many classes to print (default 5)
  --json         one JSON object per line
  --runs N       timed runs after warm-up (default 30)
  --profile      per-layer time and GMAC/s
  --cold         process start to first top-5, in fresh processes (--json: cold_ms)
  --threads N    threads sharing each layer: a number, auto (every core), or a list: 1,2
  --calibrate DIR     photos (JPEG/PNG) to calibrate activation ranges on
  --ranges FILE       reuse ranges saved by --save-ranges instead of calibrating
  --preprocessing P   torch (default for ONNX), caffe (default for TF.js/Keras), tf
  --labels FILE       class names: a JSON array or one per line (default: ImageNet for 1000 classes)
`;

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  classify: classifyCommand,
  bench: benchCommand,
  convert: convertCommand,
  'wasi-plan': wasiPlanCommand,
  preprocess: preprocessCommand,
  serve: serveCommand,
  teach: teachCommand,
  embed: embedCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 1;
  }
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`resnet-wasm: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  await run(rest);
  return process.exitCode === undefined ? 0 : Number(process.exitCode);
}

/** Errors we expect (bad files, bad arguments) print one line; anything else is a bug: full stack. */
function report(error: unknown): number {
  if (error instanceof ResnetWasmError || isArgumentError(error) || isFileError(error)) {
    process.stderr.write(`resnet-wasm: ${(error as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`resnet-wasm: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
  return 70;
}

function isArgumentError(error: unknown): boolean {
  return error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => process.exit(report(error)),
);
