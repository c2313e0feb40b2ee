/**
 * What a request to `resnet-wasm serve` can fail with. Each failure has a stable `kind`: the JSON
 * error's `kind` field, the `kind` label of the errors metric, and (through STATUS) the HTTP status.
 */
import { ResnetWasmError } from '../errors.ts';
import { OptionError } from '../options/validate.ts';

const STATUS = {
  'bad-request': 400,
  'empty-body': 400,
  'bad-multipart': 400,
  'not-found': 404,
  'body-timeout': 408,
  'body-too-large': 413,
  'too-many-files': 413,
  'too-many-pixels': 413,
  'unsupported-media-type': 415,
  'headers-too-large': 431,
  'bad-image': 422,
  'queue-full': 429,
  // Never sent (nobody is listening): the kind counts clients that hung up before their answer.
  'client-closed': 499,
  // Never sent either: a connection past --max-connections is closed before it is read.
  'too-many-connections': 503,
  internal: 500,
  'worker-crashed': 500,
  'shutting-down': 503,
  'not-ready': 503,
  timeout: 504,
} as const;

export type ServeErrorKind = keyof typeof STATUS;

export const SERVE_ERROR_KINDS = Object.keys(STATUS) as ServeErrorKind[];

/** The body of every error response. */
export interface ErrorBody {
  error: { kind: ServeErrorKind; message: string };
}

export class ServeError extends ResnetWasmError {
  readonly kind: ServeErrorKind;
  /** Read by fastify when the error comes through its own body parser. */
  readonly statusCode: number;
  /** Seconds, for a 429. */
  readonly retryAfter?: number;

  constructor(kind: ServeErrorKind, message: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServeError';
    this.kind = kind;
    this.statusCode = STATUS[kind];
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }

  toJSON(): ErrorBody {
    return { error: { kind: this.kind, message: this.message } };
  }
}

/** fastify's and @fastify/multipart's error codes, as our kinds. */
const FRAMEWORK_CODES: Record<string, ServeErrorKind> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body-too-large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty-body',
  FST_REQ_FILE_TOO_LARGE: 'body-too-large',
  FST_FILES_LIMIT: 'too-many-files',
  FST_PARTS_LIMIT: 'too-many-files',
  FST_FIELDS_LIMIT: 'too-many-files',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'bad-multipart',
  FST_MP_PREMATURE_CLOSE: 'bad-multipart',
  FST_PROTO_VIOLATION: 'bad-multipart',
};

const FRAMEWORK_MESSAGES: Partial<Record<ServeErrorKind, string>> = {
  'unsupported-media-type':
    'send the image as image/* (JPEG, PNG, WebP, ...), application/octet-stream or multipart/form-data',
  'body-too-large': 'the request body is larger than the server accepts (--max-body)',
  'too-many-files':
    'the form has more parts than the server accepts (one image, or --max-batch for /v1/classify/batch)',
};

/** Any error met while answering a request, as a ServeError: ours as they are, the framework's by code. */
export function toServeError(error: unknown): ServeError {
  if (error instanceof ServeError) return error;
  if (error instanceof OptionError) return new ServeError('bad-request', error.message, { cause: error });
  const { code, statusCode, message } = error as { code?: string; statusCode?: number; message?: string };
  const kind = code === undefined ? undefined : FRAMEWORK_CODES[code];
  if (kind !== undefined) return new ServeError(kind, FRAMEWORK_MESSAGES[kind] ?? String(message), { cause: error });
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return new ServeError('bad-request', String(message), { cause: error });
  }
  return new ServeError('internal', `internal error: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}
