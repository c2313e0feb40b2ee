/**
 * A frame as it arrived: its camera, its identity, its bytes and, for an MQTT 5 request, where to
 * answer; and the checks it passes before a worker sees it.
 */
import { createHash } from 'node:crypto';
import type { IPublishPacket } from 'mqtt';
import { ServeError } from '../serve/errors.ts';
import { checkImageHeader } from '../serve/limits.ts';

export interface Frame {
  camera: string;
  /** The `frame` user property, else the correlation data, else a short hash of the bytes. */
  id: string;
  bytes: Uint8Array;
  /** Wall-clock time of arrival, for the answer. */
  receivedAt: Date;
  /** performance.now() at arrival, for the answer's duration. */
  received: number;
  /** Set by an MQTT 5 requester: the answer goes there, with the correlation data, instead of the result topic. */
  responseTopic?: string;
  correlationData?: Buffer;
}

/** Hex digits of the payload's SHA-256 that name a frame without an id of its own. */
const HASH_DIGITS = 12;

export function frameOf(camera: string, packet: IPublishPacket): Frame {
  const bytes = packet.payload as Buffer;
  const { responseTopic, correlationData } = packet.properties ?? {};
  return {
    camera,
    id: frameId(packet),
    bytes,
    receivedAt: new Date(),
    received: performance.now(),
    ...(responseTopic === undefined ? {} : { responseTopic }),
    ...(correlationData === undefined ? {} : { correlationData }),
  };
}

function frameId(packet: IPublishPacket): string {
  const { userProperties, correlationData } = packet.properties ?? {};
  const property = userProperties?.frame;
  if (property !== undefined) return Array.isArray(property) ? property[0] : property;
  if (correlationData !== undefined) return asText(correlationData);
  return createHash('sha256').update(packet.payload).digest('hex').slice(0, HASH_DIGITS);
}

/** Correlation data is bytes: shown as text when it is UTF-8, else in hex. */
function asText(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('hex');
  }
}

/**
 * Refuses, before a worker sees it, a payload that is empty, larger than maxBytes, not a JPEG, PNG
 * or WebP, or announcing more than maxPixels (serve's checks and error kinds).
 */
export function checkFrame(bytes: Uint8Array, maxBytes: number, maxPixels: number): void {
  if (bytes.length === 0)
    throw new ServeError('empty-body', "an empty payload: publish the image file's bytes (JPEG, PNG or WebP)");
  if (bytes.length > maxBytes)
    throw new ServeError(
      'body-too-large',
      `the frame is ${bytes.length} bytes, more than the ${maxBytes} allowed (--max-bytes)`,
    );
  checkImageHeader(bytes, maxPixels);
}
