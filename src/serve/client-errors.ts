/**
 * Requests that Node's HTTP parser refuses before fastify sees them (a malformed request line or
 * header, headers too large, a request not received within requestTimeout): answered with the
 * same JSON errors as everything else, then the connection is closed (fastify's clientErrorHandler).
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ServeError, type ServeErrorKind } from './errors.ts';

const PARSER_KINDS: Record<string, ServeErrorKind> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'body-timeout',
  HPE_HEADER_OVERFLOW: 'headers-too-large',
};

export function clientErrorHandler(failed: (kind: ServeErrorKind) => void) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    // A reset connection has nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const failure = new ServeError(
      PARSER_KINDS[error.code ?? ''] ?? 'bad-request',
      `malformed HTTP request: ${error.message}`,
    );
    failed(failure.kind);
    const body = JSON.stringify(failure.toJSON());
    const status = `${failure.statusCode} ${STATUS_CODES[failure.statusCode]}`;
    if (socket.writable)
      socket.end(
        `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    socket.destroySoon();
  };
}
