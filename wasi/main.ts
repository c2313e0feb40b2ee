// resnet-wasi: the kernels as a standalone WASI command, no JavaScript needed.
//
//   resnet-wasi <model.rnw> <model.plan> <input.u8>
//
// It replays a plan written by `resnet-wasm wasi-plan` (its format: src/cli/wasi-plan.ts): the
// runtime's memory operations, recorded with the runtime's offsets. Our own static data and heap sit
// where the runtime's region began, so the region is allocated anew and every pointer argument is
// moved by the same distance (kept a multiple of 64, so alignment is unchanged). The input is a
// preprocessed NHWC uint8 file (`resnet-wasm preprocess`). Paths are relative to the first
// preopened directory (`wasmtime run --dir . ...`). Prints the top-5: score, label, index, logit
// and its f32 bits.
import { conv } from '../assembly/conv';
import { maxpool, avgpool, gap } from '../assembly/pool';
import { add } from '../assembly/add';
import { fc } from '../assembly/fc';
import { patches } from '../assembly/patches';
import { winogradInput, winogradConv } from '../assembly/winograd';
import { winogradBias } from '../assembly/winograd-weights';
import { affine } from '../assembly/affine';
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

@inline function ptr(at: usize, i: i32): usize {
  return <usize>(<isize>load<f64>(at + (<usize>i << 3)) + shift);
}

@inline function int(at: usize, i: i32): i32 {
  return <i32>load<f64>(at + (<usize>i << 3));
}

@inline function real(at: usize, i: i32): f32 {
  return <f32>load<f64>(at + (<usize>i << 3));
}

/** One kernel call, whole (part 0 of 1); `a` points at its arguments. Order: KERNELS in wasi-plan.ts. */
function call(kernel: i32, a: usize): void {
  switch (kernel) {
    case 0: conv(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), int(a, 4), ptr(a, 5), int(a, 6), int(a, 7), int(a, 8), int(a, 9), int(a, 10),
      ptr(a, 11), int(a, 12), int(a, 13), int(a, 14), int(a, 15), ptr(a, 16), ptr(a, 17), int(a, 18), 0, 1); break;
    case 1: maxpool(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), ptr(a, 4), int(a, 5), int(a, 6), int(a, 7), int(a, 8), int(a, 9), 0, 1); break;
    case 2: gap(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), ptr(a, 4), real(a, 5), int(a, 6), 0, 1); break;
    case 3: add(ptr(a, 0), int(a, 1), real(a, 2), ptr(a, 3), int(a, 4), real(a, 5), ptr(a, 6), int(a, 7), int(a, 8), int(a, 9), 0, 1); break;
    case 4: fc(ptr(a, 0), int(a, 1), ptr(a, 2), int(a, 3), ptr(a, 4), 0, 1); break;
    case 5: winogradInput(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), int(a, 4), ptr(a, 5), int(a, 6), int(a, 7), int(a, 8), 0, 1); break;
    case 6: winogradConv(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), int(a, 4), int(a, 5), ptr(a, 6), ptr(a, 7), int(a, 8), ptr(a, 9), int(a, 10),
      int(a, 11), int(a, 12), int(a, 13), ptr(a, 14), int(a, 15), 0, 1); break;
    case 7: patches(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), int(a, 4), int(a, 5), int(a, 6), int(a, 7), int(a, 8), ptr(a, 9), int(a, 10), int(a, 11),
      int(a, 12), 0, 1); break;
    case 8: winogradBias(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), ptr(a, 4)); break;
    case 9: avgpool(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), ptr(a, 4), int(a, 5), int(a, 6), int(a, 7), int(a, 8), int(a, 9), 0, 1); break;
    case 10: affine(ptr(a, 0), int(a, 1), int(a, 2), int(a, 3), ptr(a, 4), ptr(a, 5), int(a, 6), int(a, 7), 0, 1); break;
    default: fail(`unknown kernel ${kernel} in the plan`);
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
      case PARAMETERS: readInto(model, ptr(a, 1), <usize>load<f64>(a, 16), <u64>load<f64>(a)); break;
      case INPUT: {
        const bytes = <usize>load<f64>(a, 8);
        if (fileSize(input) != <u64>bytes) fail(`the input must be ${bytes} bytes (NHWC uint8, resnet-wasm preprocess)`);
        readInto(input, ptr(a, 0), bytes, 0);
        break;
      }
      case FILL: memory.fill(ptr(a, 0), <u8>int(a, 1), <usize>int(a, 2)); break;
      case CALL: call(int(a, 0), a + 8); break;
      case LOGITS: logits = ptr(a, 0); classes = int(a, 1); break;
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
