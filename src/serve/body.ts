/**
 * Getting the image bytes out of a request, within the limits: a raw body (fastify's buffer parser,
 * bodyLimit) or the file parts of a multipart form (@fastify/multipart), each bounded in size and
 * in time, so a client that stops sending half-way is answered 408 instead of holding a request.
 */
import { PassThrough, type Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ServeError } from './errors.ts';
import type { ServeLimits } from './limits.ts';

/** Content types taken as the image itself (its header then decides: JPEG, PNG and WebP are classified). */
const RAW_IMAGE_TYPES = /^(?:image\/|application\/octet-stream\b)/;

/** Text fields a form may carry beside its files (they are ignored). */
const FORM_FIELDS = 16;

/** Only raw images and multipart forms are parsed: any other content type is a 415. */
export async function registerBodyParsers(app: FastifyInstance, limits: ServeLimits): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    RAW_IMAGE_TYPES,
    { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes },
    (_request, body, done) => done(null, body),
  );
  await app.register(multipart, {
    limits: {
      fileSize: limits.maxBodyBytes,
      files: limits.maxBatch,
      fields: FORM_FIELDS,
      parts: limits.maxBatch + FORM_FIELDS,
      headerPairs: 100,
    },
  });
}

/**
 * A preParsing hook for raw bodies: the body goes through a stream that fails with a 408 if it has
 * not ended bodyTimeoutMs after the headers (a multipart body is timed by readImages instead: its
 * parser reads the request itself).
 */
export function bodyDeadline(limits: ServeLimits) {
  return async (request: FastifyRequest, _reply: unknown, payload: Readable): Promise<Readable> => {
    if (isMultipart(request)) return payload;
    const timed = payload.pipe(new PassThrough());
    const timer = setTimeout(() => timed.destroy(bodyTimeout(limits)), limits.bodyTimeoutMs);
    payload.once('end', () => clearTimeout(timer));
    timed.once('close', () => clearTimeout(timer));
    // The body parser reports the timeout; once it has given up (a body over the limit) nobody else must.
    timed.on('error', () => {});
    return timed;
  };
}

/** Read from the header: preParsing runs before the multipart parser marks the request. */
function isMultipart(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/');
}

/**
 * The images a request carries: its raw body, or the file parts of its form (at most `maxFiles`).
 * Throws a ServeError for an empty body or form, a form that is malformed or too large, or one that
 * has not arrived within the body timeout.
 */
export async function readImages(
  request: FastifyRequest,
  limits: ServeLimits,
  maxFiles: number,
): Promise<Uint8Array[]> {
  if (!request.isMultipart()) return [nonEmpty(request.body as Buffer | undefined)];
  if (Number(request.headers['content-length']) > limits.maxBodyBytes) throw formTooLarge(limits);
  const files = await withinLimits(readFileParts(request, maxFiles), request, limits);
  if (files.length === 0)
    throw new ServeError('empty-body', 'the form has no file part: send the image as a file field');
  return files;
}

async function readFileParts(request: FastifyRequest, maxFiles: number): Promise<Uint8Array[]> {
  const files: Uint8Array[] = [];
  try {
    for await (const part of request.files({ limits: { files: maxFiles } }))
      files.push(nonEmpty(await part.toBuffer()));
  } catch (error) {
    throw asFormError(error);
  }
  return files;
}

/** busboy's own errors (a missing boundary, a part cut short) carry no code: they are a malformed form. */
function asFormError(error: unknown): unknown {
  if (error instanceof ServeError || (error as { code?: string }).code !== undefined) return error;
  return new ServeError('bad-multipart', `malformed multipart/form-data: ${(error as Error).message}`, {
    cause: error,
  });
}

function nonEmpty(bytes: Buffer | undefined): Buffer {
  if (bytes === undefined || bytes.length === 0)
    throw new ServeError('empty-body', 'the request has no image: the body is empty');
  return bytes;
}

/**
 * Races the form's parsing against the body timeout and the body limit: busboy skips any amount of
 * bytes that are not a part, so the request's bytes are counted here. The loser's rejection is dropped.
 */
function withinLimits<T>(reading: Promise<T>, request: FastifyRequest, limits: ServeLimits): Promise<T> {
  reading.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  let received = 0;
  let count: ((chunk: Buffer) => void) | undefined;
  const refused = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(bodyTimeout(limits)), limits.bodyTimeoutMs);
    count = (chunk) => {
      received += chunk.length;
      if (received > limits.maxBodyBytes) reject(formTooLarge(limits));
    };
    request.raw.on('data', count);
  });
  return Promise.race([reading, refused]).finally(() => {
    clearTimeout(timer);
    request.raw.off('data', count!);
  });
}

function formTooLarge(limits: ServeLimits): ServeError {
  return new ServeError('body-too-large', `the form is larger than ${limits.maxBodyBytes} bytes (--max-body)`);
}

function bodyTimeout(limits: ServeLimits): ServeError {
  return new ServeError(
    'body-timeout',
    `the request body did not arrive within ${limits.bodyTimeoutMs} ms (--body-timeout)`,
  );
}
