import { ResnetWasmError } from '../errors.ts';

/**
 * Examples a head cannot be taught from, or a head that does not fit a model: names what was wrong
 * and where (`example 3: embedding of 512 values, the model's have 2048`, `cats/: no photos`).
 */
export class TeachError extends ResnetWasmError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TeachError';
  }
}
