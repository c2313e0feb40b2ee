// What a caller may ask of a load, and what it is told while the model arrives.
import type { NetworkOptions } from '../network.ts';

export interface LoadProgress {
  /** Bytes received and checked so far (back to 0 if a server forced a restart). */
  bytesLoaded: number;
  /** The file's size, when the source tells it (Content-Length, file size, byte length). */
  totalBytes: number | undefined;
  /** Layers whose parameters are in place. */
  layersReady: number;
  /** 0 until the header has arrived. */
  layerCount: number;
}

export interface LoadOptions extends NetworkOptions {
  /** Called after every chunk has been checked and placed. */
  onProgress?: (progress: LoadProgress) => void;
  /** Cancels the load: the promise rejects with the signal's reason (an AbortError) and the memory is dropped. */
  signal?: AbortSignal;
  /**
   * Browsers: the name of a Cache API cache. An HTTP(S) model found there loads from it (and is
   * checked like any download); otherwise the download is stored there once it has been verified.
   */
  cache?: string;
  /** How many times a broken HTTP download is resumed (or restarted) before the load fails (default 5). */
  retries?: number;
}
