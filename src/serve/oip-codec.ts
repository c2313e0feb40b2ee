/**
 * The Open Inference Protocol's infer request and response bodies over HTTP (KServe v2 REST), with
 * Triton's binary tensor data extension: a JSON header, then the tensors marked with
 * `parameters.binary_data_size` as raw little-endian bytes in their order, the JSON's length in the
 * Inference-Header-Content-Length header. A BYTES element is a 4-byte little-endian length then
 * its bytes in binary, a string in JSON (base64 for an image, as clients send images in JSON).
 */
import { ServeError } from './errors.ts';

export const HEADER_LENGTH = 'inference-header-content-length';

type Parameters = Record<string, unknown>;

export interface InferRequest {
  id?: string;
  parameters?: Parameters;
  inputs: { name: string; shape: number[]; datatype: string; parameters?: Parameters; data?: unknown }[];
  outputs?: { name: string; parameters?: Parameters }[];
}

/** An input's values as bytes (FP32 little-endian, UINT8), or one byte string per element (BYTES). */
export interface InputTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: Uint8Array | Uint8Array[];
}

export interface OutputTensor {
  name: string;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
  data: Float32Array | string[];
  binary: boolean;
}

const NUMERIC = { FP32: 4, UINT8: 1 } as const;

export function badRequest(message: string): ServeError {
  return new ServeError('bad-request', message);
}

/** The request's JSON and its inputs' data, from JSON or from the binary part of the body. */
export function parseInferRequest(
  body: Uint8Array,
  headerLength: string | undefined,
): { request: InferRequest; inputs: InputTensor[] } {
  const jsonLength = headerLength === undefined ? body.length : Number(headerLength);
  if (!Number.isInteger(jsonLength) || jsonLength < 1 || jsonLength > body.length) {
    throw badRequest(`${HEADER_LENGTH} is ${headerLength}, but the body has ${body.length} bytes`);
  }
  const request = parseJson(body.subarray(0, jsonLength));
  let offset = jsonLength;
  const inputs = request.inputs.map((input) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return { ...input, data: jsonData(input) };
    if (!Number.isInteger(size) || (size as number) < 0 || offset + (size as number) > body.length) {
      throw badRequest(
        `input "${input.name}": binary_data_size ${size} runs past the end of the body (${body.length - offset} bytes left)`,
      );
    }
    const bytes = body.subarray(offset, offset + (size as number));
    offset += size as number;
    return { ...input, data: binaryData(input, bytes) };
  });
  if (offset !== body.length)
    throw badRequest(
      `the body has ${body.length - offset} bytes after the tensors its binary_data_size parameters announce`,
    );
  return { request, inputs };
}

function parseJson(bytes: Uint8Array): InferRequest {
  let request: unknown;
  try {
    request = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw badRequest(`the inference request is not JSON: ${(error as Error).message}`);
  }
  const inputs = (request as InferRequest | null)?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) throw badRequest('the inference request has no "inputs"');
  for (const input of inputs) {
    if (typeof input?.name !== 'string' || typeof input.datatype !== 'string' || !isShape(input.shape)) {
      throw badRequest('each input needs a "name", a "datatype" and a "shape" (an array of non-negative integers)');
    }
  }
  const outputs = (request as InferRequest).outputs;
  if (outputs !== undefined && (!Array.isArray(outputs) || outputs.some((o) => typeof o?.name !== 'string'))) {
    throw badRequest('"outputs" must be an array of objects with a "name"');
  }
  return request as InferRequest;
}

function isShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0);
}

function elementCount(shape: number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function binaryData(input: InferRequest['inputs'][number], bytes: Uint8Array): Uint8Array | Uint8Array[] {
  const count = elementCount(input.shape);
  if (input.datatype === 'BYTES') return checkCount(input, splitByteStrings(input, bytes), count);
  const size = NUMERIC[input.datatype as keyof typeof NUMERIC];
  if (size === undefined) throw unsupportedType(input);
  if (bytes.length !== count * size)
    throw badRequest(
      `input "${input.name}" has ${bytes.length} bytes of data; shape [${input.shape}] of ${input.datatype} needs ${count * size}`,
    );
  return bytes;
}

function splitByteStrings(input: InferRequest['inputs'][number], bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const elements: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = at + 4 <= bytes.length ? view.getUint32(at, true) : -1;
    if (length < 0 || at + 4 + length > bytes.length)
      throw badRequest(`input "${input.name}": BYTES element ${elements.length} runs past its binary data`);
    elements.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return elements;
}

function jsonData(input: InferRequest['inputs'][number]): Uint8Array | Uint8Array[] {
  if (!Array.isArray(input.data))
    throw badRequest(`input "${input.name}" has neither "data" nor parameters.binary_data_size`);
  const values = (input.data as unknown[]).flat(Infinity);
  const count = elementCount(input.shape);
  checkCount(input, values, count);
  switch (input.datatype) {
    case 'BYTES':
      return values.map((v) => byteString(input.name, v));
    case 'FP32':
      if (!values.every((v) => typeof v === 'number' && Number.isFinite(v)))
        throw badRequest(`input "${input.name}": FP32 data must be finite numbers`);
      return new Uint8Array(Float32Array.from(values as number[]).buffer);
    case 'UINT8':
      if (!values.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255))
        throw badRequest(`input "${input.name}": UINT8 data must be integers from 0 to 255`);
      return Uint8Array.from(values as number[]);
    default:
      throw unsupportedType(input);
  }
}

/** A BYTES element in JSON: base64 (a string, or KServe v1's {"b64": ...}), else the string's UTF-8 bytes. */
function byteString(name: string, value: unknown): Uint8Array {
  const text =
    typeof value === 'object' && value !== null && typeof (value as { b64?: unknown }).b64 === 'string'
      ? (value as { b64: string }).b64
      : value;
  if (typeof text !== 'string') throw badRequest(`input "${name}": BYTES data must be strings (base64 for an image)`);
  if (/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(text) && text.replace(/\s/g, '').length % 4 === 0)
    return Buffer.from(text, 'base64');
  return new TextEncoder().encode(text);
}

function checkCount<T>(input: InferRequest['inputs'][number], values: T[], count: number): T[] {
  if (values.length !== count)
    throw badRequest(`input "${input.name}" has ${values.length} elements; its shape [${input.shape}] has ${count}`);
  return values;
}

function unsupportedType(input: InferRequest['inputs'][number]): ServeError {
  return badRequest(
    `input "${input.name}" is ${input.datatype}: send BYTES (encoded images), FP32 (normalized values) or UINT8 (pixels)`,
  );
}

/**
 * The response: JSON when no output is binary, else the JSON header (each binary output's size in
 * its parameters) followed by the binary outputs, with the header's length.
 */
export function encodeInferResponse(
  header: Parameters,
  outputs: OutputTensor[],
): { body: Uint8Array | Parameters; headerLength?: number } {
  const chunks: Uint8Array[] = [];
  const described = outputs.map(({ name, datatype, shape, data, binary }) => {
    if (!binary) return { name, datatype, shape, data: Array.from(data as ArrayLike<number | string>) };
    const bytes =
      datatype === 'FP32' ? new Uint8Array((data as Float32Array).buffer.slice(0)) : joinByteStrings(data as string[]);
    chunks.push(bytes);
    return { name, datatype, shape, parameters: { binary_data_size: bytes.length } };
  });
  const json = { ...header, outputs: described };
  if (chunks.length === 0) return { body: json };
  const head = new TextEncoder().encode(JSON.stringify(json));
  return { body: Buffer.concat([head, ...chunks]), headerLength: head.length };
}

function joinByteStrings(strings: string[]): Uint8Array {
  return Buffer.concat(
    strings.flatMap((s) => {
      const bytes = Buffer.from(s, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    }),
  );
}
