import { availableParallelism } from 'node:os';
import { checkThreads, fromText } from '../options/validate.ts';
import { startServer } from '../serve/server.ts';
import { serveSizing } from '../serve/sizing.ts';
import { type CommandArgs, positiveInteger, UsageError } from './command.ts';
import { defaultModelPath } from './paths.ts';

/** `resnet-wasm serve` (options in commands.ts): runs until SIGTERM or SIGINT, then shuts down gracefully. */
export async function run({ values }: CommandArgs): Promise<void> {
  const { workers, threads } = serveSizing(
    values.workers === undefined ? undefined : positiveInteger(values.workers, '--workers'),
    checkThreads(fromText(values.threads!)),
    availableParallelism(),
  );
  const server = await startServer({
    modelPath: values.model ?? defaultModelPath(),
    modelName: values['model-name'],
    workers,
    threads,
    host: values.host!,
    port: port(values.port!),
    queueSize: positiveInteger(values.queue, '--queue'),
    timeoutMs: positiveInteger(values.timeout, '--timeout'),
    bodyTimeoutMs: positiveInteger(values['body-timeout'], '--body-timeout'),
    maxBodyBytes: positiveInteger(values['max-body'], '--max-body'),
    maxPixels: positiveInteger(values['max-pixels'], '--max-pixels'),
    maxBatch: positiveInteger(values['max-batch'], '--max-batch'),
    maxConnections: positiveInteger(values['max-connections'], '--max-connections'),
    log: (line) => process.stderr.write(`resnet-wasm serve: ${line}\n`),
  });
  process.stdout.write(
    `resnet-wasm serve: listening on ${server.url} (workers: ${server.pool.size}, threads each: ${threads})\n`,
  );
  const signal = await Promise.race(
    ['SIGTERM', 'SIGINT'].map((name) => new Promise<string>((resolve) => process.once(name, () => resolve(name)))),
  );
  process.stdout.write(`resnet-wasm serve: ${signal}: finishing the requests in flight\n`);
  await server.close();
  process.stdout.write('resnet-wasm serve: stopped\n');
}

/** 0 to 65535; 0 asks the system for a free port. */
function port(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port must be 0 to 65535, got "${text}"`);
  return n;
}
