// A model over HTTP(S): a broken download resumes with Range requests, a bounded number of times.
import { ModelLoadError, ResnetWasmError } from '../../errors.ts';
import { type Chunk, streamChunks } from './chunks.ts';
import type { LoadOptions } from './options.ts';

const DEFAULT_RETRIES = 5;
const RETRY_DELAY_MS = 200;

/**
 * Downloads `url`. When the connection breaks, asks for the rest with `Range: bytes=N-` (and
 * `If-Range`, so a file changed on the server comes back whole); a 206 whose Content-Range starts
 * at N continues the stream, a 200 restarts it from byte 0. At most `retries` breaks in all.
 */
export async function* httpChunks(url: string, options: LoadOptions): AsyncGenerator<Chunk> {
  const retries = options.retries ?? DEFAULT_RETRIES;
  let received = 0;
  let totalBytes: number | undefined;
  let validator: string | null = null;
  for (let failures = 0; ; ) {
    try {
      const response = await request(url, received, validator, options.signal);
      if (response.status === 206 && !continuesAt(response, received)) {
        received = 0;
        await response.body!.cancel();
        throw new Error('the server answered with another range than the one asked for');
      }
      if (response.status !== 206) {
        received = 0;
        totalBytes = identityLength(response);
        validator = response.headers.get('etag') ?? response.headers.get('last-modified');
        yield { start: true, totalBytes };
      }
      for await (const chunk of streamChunks(response.body!)) {
        received += chunk.length;
        yield chunk;
      }
      if (totalBytes === undefined || received >= totalBytes) return;
      throw new Error(`the connection closed after ${received} of ${totalBytes} bytes`);
    } catch (error) {
      if (error instanceof ResnetWasmError || options.signal?.aborted) throw error;
      if (++failures > retries) {
        throw new ModelLoadError(`${url}: download failed after ${retries} retries: ${(error as Error).message}`, {
          url,
          cause: error,
        });
      }
    }
    await delay(RETRY_DELAY_MS * failures, options.signal);
  }
}

/** A GET from byte `from`; refuses HTTP errors (they are not worth retrying). */
async function request(
  url: string,
  from: number,
  validator: string | null,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (from > 0) headers.range = `bytes=${from}-`;
  if (from > 0 && validator !== null) headers['if-range'] = validator;
  const response = await fetch(url, { headers, signal });
  if (!response.ok || response.body === null) {
    response.body?.cancel().catch(() => undefined);
    throw new ModelLoadError(`${url}: HTTP ${response.status} ${response.statusText}`.trim(), {
      url,
      status: response.status,
    });
  }
  return response;
}

/** Whether a 206's Content-Range starts at `from`. */
function continuesAt(response: Response, from: number): boolean {
  const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
  return range !== null && Number(range[1]) === from;
}

/** The file size from Content-Length, unless the body is compressed (then the header counts other bytes). */
export function identityLength(response: Response): number | undefined {
  const encoding = response.headers.get('content-encoding');
  const length = response.headers.get('content-length');
  if ((encoding !== null && encoding !== 'identity') || length === null) return undefined;
  return Number(length);
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
