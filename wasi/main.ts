// resnet-wasi: the kernels as a standalone WASI command, no JavaScript needed.
//
//   resnet-wasi <model.rnw> <model.plan> <input.u8>
//
// It replays a plan written by `resnet-wasm wasi-plan` (its format: src/cli/wasi-plan.ts): the
// runtime's memory operations, recorded with the runtime's offsets; kernel calls go through
// calls.ts, generated from the runtime's kernel table. Our own static data and heap sit
// where the runtime's region began, so the region is allocated anew and every pointer argument is
// moved by the same distance (kept a multiple of 64, so alignment is unchanged). The input is a
// preprocessed NHWC uint8 file (`resnet-wasm preprocess`). Paths are relative to the first
// preopened directory (`wasmtime run --dir . ...`). Prints the top-5: score, label, index, logit
// and its f32 bits.
import { call } from './calls';
import { int, ptr } from './values';
import { errno, fd, fd_close, fd_filestat_get, fd_pread, filestat, path_open, rights } from 'bindings/wasi_snapshot_preview1';

const MAGIC: u32 = 0x504e5752; // "RNWP"
const MEMORY = 1, PARAMETERS = 2, INPUT = 3, FILL = 4, CALL = 5, LOGITS = 6, LABELS = 7;
const FIRST_PREOPEN: fd = 3;
const TOP = 5;

const iovec = memory.data(16);
const scratch = memory.data(64);

/** Added to every pointer of the plan: where our region starts minus where the runtime's did. */
let shift: isize = 0;
let logits: usize = 0;
let classes = 0;
let labels: string[] = [];

function fail(message: string): void {
  process.stderr.write(`resnet-wasi: ${message}\n`);
  process.exit(1);
}

function openFile(path: string): fd {
  const name = String.UTF8.encode(path);
  const err = path_open(FIRST_PREOPEN, 0, changetype<usize>(name), name.byteLength, 0, rights.FD_READ | rights.FD_SEEK | rights.FD_FILESTAT_GET, 0, 0, scratch);
  if (err != errno.SUCCESS) fail(`cannot open ${path} (WASI error ${err}): paths are relative to the first preopened directory`);
  return load<u32>(scratch);
}

function fileSize(file: fd): u64 {
  const stat = changetype<filestat>(scratch);
  if (fd_filestat_get(file, stat) != errno.SUCCESS) fail('cannot read a file size');
  return stat.size;
}

/** Reads `length` bytes at `offset` of the file to memory at `to`. */
function readInto(file: fd, to: usize, length: usize, offset: u64): void {
  for (let done: usize = 0; done < length; ) {
    store<usize>(iovec, to + done);
    store<usize>(iovec, length - done, sizeof<usize>());
    if (fd_pread(file, iovec, 1, offset + done, scratch) != errno.SUCCESS) fail('a file read failed');
    const n = load<usize>(scratch);
    if (n == 0) fail('a file ends before the plan says it does: is this the plan of this model?');
    done += n;
  }
}

function replay(plan: usize, planBytes: usize, model: fd, input: fd): void {
  if (planBytes < 16 || load<u32>(plan) != MAGIC || load<u32>(plan, 4) != 1) fail('not a resnet-wasm plan (version 1)');
  const count = load<u32>(plan, 8);
  let at = plan + 16;
  for (let i: u32 = 0; i < count; i++) {
    if (at + 8 > plan + planBytes) fail('the plan is truncated');
    const code = load<u32>(at), n = load<u32>(at, 4);
    const a = at + 8;
    at = a + (code == LABELS ? (<usize>n + 7) & ~7 : <usize>n << 3);
    if (at > plan + planBytes) fail('the plan is truncated');
    switch (code) {
      case MEMORY: {
        const base = <usize>load<f64>(a), end = <usize>load<f64>(a, 8);
        const region = heap.alloc(end - base + 128);
        shift = <isize>((region + 63) & ~63) - <isize>(base & ~63);
        break;
      }
      case PARAMETERS: readInto(model, ptr(a, 1, shift), <usize>load<f64>(a, 16), <u64>load<f64>(a)); break;
      case INPUT: {
        const bytes = <usize>load<f64>(a, 8);
        if (fileSize(input) != <u64>bytes) fail(`the input must be ${bytes} bytes (NHWC uint8, resnet-wasm preprocess)`);
        readInto(input, ptr(a, 0, shift), bytes, 0);
        break;
      }
      case FILL: memory.fill(ptr(a, 0, shift), <u8>int(a, 1), <usize>int(a, 2)); break;
      case CALL: if (!call(int(a, 0), a + 8, shift)) fail(`unknown kernel ${int(a, 0)} in the plan`); break;
      case LOGITS: logits = ptr(a, 0, shift); classes = int(a, 1); break;
      case LABELS: labels = String.UTF8.decodeUnsafe(a, n).split('\n'); break;
      default: fail(`unknown operation ${code} in the plan`);
    }
  }
  if (logits == 0) fail('the plan has no logits');
}

/** Best first, ties to the lower index (as the runtime's topK); scores are a softmax in f64. */
function printTop(): void {
  let max: f32 = -Infinity;
  for (let c = 0; c < classes; c++) max = Mathf.max(max, load<f32>(logits + (<usize>c << 2)));
  let sum: f64 = 0;
  for (let c = 0; c < classes; c++) sum += Math.exp(<f64>load<f32>(logits + (<usize>c << 2)) - max);
  const taken = new StaticArray<bool>(classes);
  for (let k = 0; k < min(TOP, classes); k++) {
    let best = -1;
    for (let c = 0; c < classes; c++) {
      if (!taken[c] && (best < 0 || load<f32>(logits + (<usize>c << 2)) > load<f32>(logits + (<usize>best << 2)))) best = c;
    }
    taken[best] = true;
    const logit = load<f32>(logits + (<usize>best << 2));
    const permille = <i64>Math.round(1000 * Math.exp(<f64>logit - max) / sum);
    const label = best < labels.length ? labels[best] : `class ${best}`;
    const bits = reinterpret<u32>(logit).toString(16).padStart(8, '0');
    console.log(`${(permille / 10).toString().padStart(3)}.${(permille % 10).toString()}%  ${label} (${best})  logit ${logit.toString()} 0x${bits}`);
  }
}

const args = process.argv;
if (args.length != 4) {
  process.stderr.write('usage: resnet-wasi <model.rnw> <model.plan> <input.u8>   (paths relative to the first preopened directory)\n');
  process.exit(2);
}
const model = openFile(args[1]), planFile = openFile(args[2]), input = openFile(args[3]);
const planBytes = <usize>fileSize(planFile);
const plan = heap.alloc(planBytes);
readInto(planFile, plan, planBytes, 0);
replay(plan, planBytes, model, input);
printTop();
fd_close(model);
fd_close(planFile);
fd_close(input);
