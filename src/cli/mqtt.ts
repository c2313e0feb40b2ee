import { readFileSync } from 'node:fs';
import type { QoS } from '../mqtt/options.ts';
import { mqttService } from '../mqtt/service.ts';
import { checkThreads, checkTop, fromText } from '../options/validate.ts';
import { type CommandArgs, positiveInteger, UsageError } from './command.ts';
import { defaultModelPath } from './paths.ts';

/** Read when --password-file is not given: a password on the command line would show in `ps`. */
export const PASSWORD_VARIABLE = 'RESNET_WASM_MQTT_PASSWORD';

/** `resnet-wasm mqtt` (options in commands.ts): runs until SIGTERM or SIGINT, then answers the frames it has and says `offline`. */
export async function run({ values, flags }: CommandArgs): Promise<void> {
  const log = (line: string) => process.stderr.write(`resnet-wasm mqtt: ${line}\n`);
  const service = await mqttService({
    broker: values.broker!,
    modelPath: values.model ?? defaultModelPath(),
    top: checkTop(fromText(values.top!)),
    workers: values.workers === undefined ? undefined : positiveInteger(values.workers, '--workers'),
    threads: checkThreads(fromText(values.threads!)),
    qos: qos(values.qos!),
    retain: flags.retain,
    images: values.topic,
    result: values['result-topic'],
    error: values['error-topic'],
    status: values['status-topic'],
    group: values.group,
    clientId: values['client-id'],
    sessionExpirySeconds: positiveInteger(values['session-expiry'], '--session-expiry'),
    maxBytes: positiveInteger(values['max-bytes'], '--max-bytes'),
    maxPixels: positiveInteger(values['max-pixels'], '--max-pixels'),
    timeoutMs: positiveInteger(values.timeout, '--timeout'),
    ca: readOptional(values.ca),
    cert: readOptional(values.cert),
    key: readOptional(values.key),
    username: values.username,
    password: password(values['password-file']),
    homeassistant: flags.homeassistant,
    discoveryPrefix: values['discovery-prefix'],
    metricsPort: values['metrics-port'] === undefined ? undefined : metricsPort(values['metrics-port']),
    metricsHost: values['metrics-host'],
    log,
  });
  const { workers, threads } = service.sizing;
  const metrics = service.metricsUrl === undefined ? '' : `, metrics on ${service.metricsUrl}`;
  process.stdout.write(
    `resnet-wasm mqtt: online as ${service.clientId} on ${values.broker} (workers: ${workers}, threads each: ${threads}, status: ${service.statusTopic}${metrics})\n`,
  );
  const signal = await Promise.race(
    ['SIGTERM', 'SIGINT'].map((name) => new Promise<string>((resolve) => process.once(name, () => resolve(name)))),
  );
  process.stdout.write(`resnet-wasm mqtt: ${signal}: answering the frames received, then offline\n`);
  await service.stop();
  process.stdout.write('resnet-wasm mqtt: stopped\n');
}

function qos(text: string): QoS {
  if (text !== '0' && text !== '1' && text !== '2') throw new UsageError(`--qos must be 0, 1 or 2, got "${text}"`);
  return Number(text) as QoS;
}

function metricsPort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`--metrics-port must be 0 to 65535, got "${text}"`);
  return n;
}

function readOptional(path: string | undefined): Buffer | undefined {
  return path === undefined ? undefined : readFileSync(path);
}

/** From --password-file (its first line), else from the environment; never from the command line. */
function password(file: string | undefined): string | undefined {
  if (file !== undefined) return readFileSync(file, 'utf8').split(/\r?\n/)[0];
  return process.env[PASSWORD_VARIABLE];
}
