// A local HTTP server for loader tests (127.0.0.1, an ephemeral port): serves one file, optionally
// throttled, cutting connections mid-file, ignoring Range requests, or failing with a status.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServeOptions {
  /** Throttle the body to this many bytes a second (default: as fast as the socket takes it). */
  bytesPerSecond?: number;
  /** Response i (0-based) breaks its connection after sending cutAfter[i] body bytes. */
  cutAfter?: (number | undefined)[];
  /** Answer Range requests with the whole file (200), as some servers do. */
  ignoreRange?: boolean;
  /** Answer every request with this status and no file. */
  status?: number;
}

export interface RequestRecord {
  range: string | null;
  ifRange: string | null;
  status: number;
  /** Body bytes written before the response ended or was cut. */
  sent: number;
  /** Settles when the response's connection has closed (the body ended, was cut, or the client left). */
  closed: Promise<void>;
}

export interface FileServer {
  url: string;
  requests: RequestRecord[];
  /** performance.now() when the last byte of the file went to the socket, once it has. */
  lastByteAt: number | undefined;
  close(): Promise<void>;
}

const ETAG = '"model-v1"';
/** Throttled bodies go out in slices of at most this many bytes, each at its due time. */
const SLICE_BYTES = 16 * 1024;

export async function serveFile(file: Uint8Array, options: ServeOptions = {}): Promise<FileServer> {
  const requests: RequestRecord[] = [];
  const state: FileServer = { url: '', requests, lastByteAt: undefined, close: async () => {} };
  const server = createServer((req, res) => {
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    const record: RequestRecord = {
      range: req.headers.range ?? null,
      ifRange: (req.headers['if-range'] as string) ?? null,
      status: 0,
      sent: 0,
      closed,
    };
    requests.push(record);
    const cut = options.cutAfter?.[requests.length - 1];
    respond(req, res, file, options, record, cut).then(
      (complete) => {
        if (complete) state.lastByteAt = performance.now();
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.rnw`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** Sends the file or the requested part of it; resolves true once the file's last byte is out. */
async function respond(
  req: IncomingMessage,
  res: ServerResponse,
  file: Uint8Array,
  options: ServeOptions,
  record: RequestRecord,
  cut: number | undefined,
): Promise<boolean> {
  if (options.status !== undefined) {
    record.status = options.status;
    res.writeHead(options.status).end();
    return false;
  }
  const from = options.ignoreRange ? 0 : rangeStart(req, file.length);
  record.status = from > 0 ? 206 : 200;
  const headers: Record<string, string> = {
    'content-length': String(file.length - from),
    etag: ETAG,
    'accept-ranges': 'bytes',
  };
  if (from > 0) headers['content-range'] = `bytes ${from}-${file.length - 1}/${file.length}`;
  res.writeHead(record.status, headers);
  const body = file.subarray(from, cut === undefined ? file.length : from + cut);
  await sendThrottled(res, body, options.bytesPerSecond, record);
  if (cut !== undefined) {
    res.destroy();
    return false;
  }
  await new Promise<void>((resolve) => res.end(resolve));
  return true;
}

/** The N of `Range: bytes=N-` when it applies (and If-Range, if sent, names this file), else 0. */
function rangeStart(req: IncomingMessage, size: number): number {
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (match === null || (ifRange !== undefined && ifRange !== ETAG)) return 0;
  const from = Number(match[1]);
  return from < size ? from : 0;
}

/** Writes slices, each no earlier than its due time at the given rate, and waits for the socket to drain. */
async function sendThrottled(
  res: ServerResponse,
  body: Uint8Array,
  bytesPerSecond: number | undefined,
  record: RequestRecord,
): Promise<void> {
  const start = performance.now();
  for (let pos = 0; pos < body.length && !res.destroyed; pos += SLICE_BYTES) {
    if (bytesPerSecond !== undefined) {
      const due = start + (pos / bytesPerSecond) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const slice = body.subarray(pos, pos + SLICE_BYTES);
    record.sent += slice.length;
    if (!res.write(slice)) await drained(res);
  }
}

/** Resolves when the socket takes more data, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}
