import { readFile } from 'node:fs/promises';
import { ImageDecodeError } from '../errors.ts';
import { checkThreads, fromText } from '../options/validate.ts';
import { loadModel } from '../runtime/model.ts';
import { existingDefaultModel } from './classify.ts';
import { type CommandArgs, UsageError } from './command.ts';

/** `resnet-wasm embed photo.jpg ... [--json]`: each photo's embedding, one line per photo (options in commands.ts). */
export async function run({ values, flags, positionals }: CommandArgs): Promise<void> {
  if (positionals.length === 0) throw new UsageError('embed needs at least one image file');
  const threads = checkThreads(fromText(values.threads!));
  const model = await loadModel(values.model ?? existingDefaultModel(), { threads });
  try {
    for (const file of positionals) {
      const start = performance.now();
      try {
        const embedding = Array.from(await model.embed(new Uint8Array(await readFile(file))));
        const ms = Number((performance.now() - start).toFixed(1));
        process.stdout.write(
          `${flags.json ? JSON.stringify({ file, embedding, ms }) : `${file}\t${embedding.join(' ')}`}\n`,
        );
      } catch (error) {
        if (!(error instanceof ImageDecodeError) && !(error instanceof Error && 'syscall' in error)) throw error;
        process.exitCode = 1;
        const message = (error as Error).message;
        if (flags.json) process.stdout.write(`${JSON.stringify({ file, error: message })}\n`);
        else process.stderr.write(`resnet-wasm: ${file}: ${message}\n`);
      }
    }
  } finally {
    model.dispose();
  }
}
