import { ResnetWasmError } from '../errors.ts';

/** Node's errors for a file that cannot be read (ENOENT, EACCES, EISDIR, ...): they name the path. */
export function isFileError(error: unknown): boolean {
  return error instanceof Error && 'syscall' in error && 'path' in error;
}

/**
 * Runs `work`, which reads `file`: an error about the file's content (a model's bad record, an
 * image that does not decode) gets the file's name in front, as Node's own file errors have it.
 */
export async function aboutFile<T>(file: string, work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ResnetWasmError && !error.message.startsWith(`${file}: `))
      error.message = `${file}: ${error.message}`;
    throw error;
  }
}
