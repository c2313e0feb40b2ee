// Requests to `resnet-wasm serve` that fetch() cannot make: bodies that stall, clients that hang up,
// bodies far over the limit sent until the server answers. node:http on loopback.
import { type IncomingHttpHeaders, type OutgoingHttpHeaders, request } from 'node:http';
import { connect } from 'node:net';

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  json: unknown;
}

const CHUNK = new Uint8Array(1 << 20).fill(0x55);

/**
 * Sends the headers and `sent`, then nothing more (the rest of the announced body never comes):
 * resolves with the server's answer, and then closes the connection.
 */
export function stallAfter(url: string, headers: OutgoingHttpHeaders, sent: Uint8Array): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers });
    req.on('response', (res) =>
      readAnswer(res).then((answer) => {
        req.destroy();
        resolve(answer);
      }, reject),
    );
    req.on('error', reject);
    req.write(sent);
  });
}

/** Sends the headers and `sent`, then hangs up without waiting for an answer. */
export function hangUpAfter(url: string, headers: OutgoingHttpHeaders, sent: Uint8Array, delayMs = 50): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', headers });
    req.on('error', () => {});
    req.write(sent, () =>
      setTimeout(() => {
        req.destroy();
        resolve();
      }, delayMs),
    );
  });
}

/**
 * Streams `totalBytes` (1 MiB at a time; chunked transfer encoding when no content-length is given)
 * until the server answers; resolves with the answer and how many body bytes had been written by
 * then. A raw socket, because a server that refuses a body closes the connection while the client
 * still sends: the write fails (EPIPE, ECONNRESET), and node:http would drop the answer already
 * received with it.
 */
export function sendUntilAnswered(
  url: string,
  headers: Record<string, string | number>,
  totalBytes: number,
): Promise<Answer & { written: number }> {
  const { hostname, port, pathname } = new URL(url);
  const chunked = headers['content-length'] === undefined;
  const head = [
    `POST ${pathname} HTTP/1.1`,
    `host: ${hostname}:${port}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (chunked) head.push('transfer-encoding: chunked');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const received: Buffer[] = [];
    let written = 0;
    const answered = () => received.length > 0;
    const finish = () => {
      socket.destroy();
      if (!answered())
        return reject(new Error(`the server closed the connection without an answer after ${written} bytes`));
      resolve({ ...parseResponse(Buffer.concat(received)), written });
    };
    socket.on('data', (data) => {
      received.push(data);
      if (isComplete(Buffer.concat(received))) finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
    const writeMore = () => {
      while (!answered() && written < totalBytes) {
        const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, totalBytes - written));
        written += chunk.length;
        const framed = chunked
          ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
          : chunk;
        if (!socket.write(framed)) return void socket.once('drain', writeMore);
      }
      if (!answered() && chunked) socket.write('0\r\n\r\n');
    };
    socket.write(`${head.join('\r\n')}\r\n\r\n`, writeMore);
  });
}

/** Whether the bytes hold a whole response: headers and content-length bytes of body. */
function isComplete(bytes: Buffer): boolean {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /content-length: *(\d+)/i.exec(bytes.subarray(0, end).toString('latin1'));
  return length !== null && bytes.length >= end + 4 + Number(length[1]);
}

function parseResponse(bytes: Buffer): Answer {
  const end = bytes.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const body = bytes.subarray(end + 4).toString('utf8');
  return { status: Number(statusLine.split(' ')[1]), headers, json: body === '' ? undefined : JSON.parse(body) };
}

/** Writes `text` on a fresh connection and returns all that comes back until the server closes it. */
export function rawExchange(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text));
    const received: Buffer[] = [];
    socket.on('data', (data) => received.push(data));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(received).toString('utf8')));
  });
}

async function readAnswer(res: import('node:http').IncomingMessage): Promise<Answer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return { status: res.statusCode ?? 0, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) };
}
