/** Base class of every error this library throws on purpose. */
export class ResnetWasmError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ResnetWasmError';
  }
}

/** Where in a model file a problem lies, as far as the reader knows it. */
export interface FormatErrorContext {
  /** e.g. `header`, `metadata`, `record 12`, `trailer` */
  section?: string;
  /** Name of the layer concerned, once the metadata is known. */
  layer?: string;
}

/**
 * A model file (or a model about to be written) breaks docs/FORMAT.md. The message reads like
 * `record 12 (layer "layer2.0.conv1") at byte 123456: CRC-32 mismatch`.
 */
export class ModelFormatError extends ResnetWasmError {
  /** Byte offset in the file where the problem was found. */
  readonly offset: number;
  readonly layer?: string;

  constructor(problem: string, offset: number, context: FormatErrorContext = {}) {
    super(`${describeLocation(offset, context)}: ${problem}`);
    this.name = 'ModelFormatError';
    this.offset = offset;
    if (context.layer !== undefined) this.layer = context.layer;
  }
}

function describeLocation(offset: number, { section, layer }: FormatErrorContext): string {
  const parts = [];
  if (section !== undefined) parts.push(section);
  if (layer !== undefined) parts.push(`(layer ${JSON.stringify(layer)})`);
  parts.push(`at byte ${offset}`);
  return parts.join(' ');
}

/** A model could not be fetched: HTTP status, network failure after the retries, a bad source. */
export class ModelLoadError extends ResnetWasmError {
  readonly url?: string;
  readonly status?: number;

  constructor(message: string, details: { url?: string; status?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ModelLoadError';
    if (details.url !== undefined) this.url = details.url;
    if (details.status !== undefined) this.status = details.status;
  }
}

/** An image file could not be decoded into pixels. */
export class ImageDecodeError extends ResnetWasmError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

/**
 * A model to convert (ONNX, TF.js layers) cannot be read or cannot run here. Names the file and,
 * where there is one, the source node and its operator: `model.onnx: node "Conv_12" (Conv):
 * grouped convolution (group = 32) is not supported`.
 */
export class ModelImportError extends ResnetWasmError {
  readonly file?: string;
  readonly node?: string;

  constructor(problem: string, where: { file?: string; node?: string; op?: string } = {}) {
    const node =
      where.node === undefined ? '' : `node ${JSON.stringify(where.node)}${where.op ? ` (${where.op})` : ''}: `;
    super(`${where.file ? `${where.file}: ` : ''}${node}${problem}`);
    this.name = 'ModelImportError';
    if (where.file !== undefined) this.file = where.file;
    if (where.node !== undefined) this.node = where.node;
  }
}

/**
 * A residual-block lesion that cannot be made (`withoutBlocks`, `resnet-wasm lesion`): an unknown
 * block name, a downsampling block where dropping is refused, or every block at once. Names the block.
 */
export class BlockLesionError extends ResnetWasmError {
  readonly block?: string;

  constructor(problem: string, block?: string) {
    super(block === undefined ? problem : `block ${JSON.stringify(block)}: ${problem}`);
    this.name = 'BlockLesionError';
    if (block !== undefined) this.block = block;
  }
}

/**
 * A worker thread of a model's pool failed (a wasm trap, an error, an exit): the call it was part of
 * and every later one on that model throw this, as the model cannot run any more. Names the thread
 * (1 and up; 0 is the caller), the kernel it was running where known, and the worker's message.
 */
export class ThreadFailureError extends ResnetWasmError {
  readonly thread: number;
  readonly kernel?: string;

  constructor(thread: number, kernel: string | undefined, problem: string) {
    const where = kernel === undefined ? '' : ` running kernel "${kernel}"`;
    super(`worker thread ${thread} failed${where}: ${problem}; the model cannot run any more: load it again`);
    this.name = 'ThreadFailureError';
    this.thread = thread;
    if (kernel !== undefined) this.kernel = kernel;
  }
}
