/** Node's errors for a file that cannot be read (ENOENT, EACCES, EISDIR, ...): they name the path. */
export function isFileError(error: unknown): boolean {
  return error instanceof Error && 'syscall' in error && 'path' in error;
}
