/** The limits of `resnet-wasm serve` (limits.ts enforces them) and their defaults. */
export interface ServeLimits {
  /** Largest request body in bytes (a multipart form counts whole). */
  maxBodyBytes: number;
  /** Largest image, width x height as its header announces it, checked before any decoding. */
  maxPixels: number;
  /** A body must have arrived this many milliseconds after its headers (408 otherwise). */
  bodyTimeoutMs: number;
  /** The longest a request waits for its answer once its body is in, queue included (504). */
  timeoutMs: number;
  /** Images waiting for a worker; past it, 429 with Retry-After. */
  queueSize: number;
  /** Images in one /v1/classify/batch form. */
  maxBatch: number;
  /**
   * Open connections; past it, a new one is closed at once. A connection silent for longer than any
   * request may legitimately be (idleTimeoutMs) is closed too, so idle ones cannot hold every slot.
   */
  maxConnections: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxBodyBytes: 16 * 2 ** 20,
  // A 16 MP photo: the JavaScript fallback decoder (jpeg-js, where sharp does not load) needs about
  // 28 bytes a pixel (450 MB), and every worker may be decoding at once.
  maxPixels: 16_000_000,
  bodyTimeoutMs: 10_000,
  timeoutMs: 30_000,
  queueSize: 64,
  maxBatch: 16,
  maxConnections: 256,
};
