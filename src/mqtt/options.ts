/**
 * What a gateway is told: the broker and how to reach it, the model and how to answer, the topics,
 * and the limits a frame must pass (serve's, src/serve/limits.ts). resolveOptions fills in the
 * defaults and refuses what cannot work, naming the option.
 */
import { availableParallelism, hostname } from 'node:os';
import { basename } from 'node:path';
import { checkThreads, OptionError, type ThreadsChoice } from '../options/validate.ts';
import { DEFAULT_LIMITS } from '../serve/limits.ts';
import { type ServeSizing, serveSizing } from '../serve/sizing.ts';
import { MqttOptionError } from './errors.ts';
import { DEFAULT_DISCOVERY_PREFIX } from './homeassistant.ts';
import { checkFilter, checkTemplate, DEFAULT_TOPICS, type Topics } from './topics.ts';

export type QoS = 0 | 1 | 2;

export interface MqttServiceOptions extends Partial<Topics> {
  /** mqtt://host:1883, mqtts://host:8883, ws://host:8080/mqtt or wss:// */
  broker: string;
  /** A .rnw file (converted or taught); every worker loads its own copy. */
  modelPath: string;
  /** Classes in each answer (default 5). */
  top?: number;
  /** Frames classified at once, each by a worker with its own model (default: the cores / threads), as serve's `workers`. */
  workers?: number;
  /**
   * Threads sharing each frame's inference in a worker (default auto: the cores / workers, at most
   * 4), as serve's: workers x threads stay within the cores unless both are given. (`threads` used
   * to count the workers; that is `workers` now.)
   */
  threads?: ThreadsChoice;
  /** Of the subscription and of every answer (default 1). */
  qos?: QoS;
  /** Results are retained: a new subscriber reads each camera's last result at once (default false). */
  retain?: boolean;
  /** Subscribe through `$share/GROUP/...`: the gateways of a group split the frames. */
  group?: string;
  /** Unique per gateway (default resnet-wasm-HOSTNAME); it names the persistent session and the status topic. */
  clientId?: string;
  /** How long the broker keeps the session, and the QoS 1 frames for it, while the gateway is away (default 300). */
  sessionExpirySeconds?: number;
  /** Largest payload, refused before any decoding (default: serve's --max-body). */
  maxBytes?: number;
  /** Largest image, as its header announces it (default: serve's --max-pixels). */
  maxPixels?: number;
  /** The longest a frame may take in a worker (default: serve's --timeout). */
  timeoutMs?: number;
  /** MQTT 5 requests waiting (each is answered, newest-frame-wins does not apply); past it, queue-full (default: serve's --queue). */
  maxRequests?: number;
  /** TLS: the CA that signed the broker's certificate, and the client's certificate and key (PEM). */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  username?: string;
  password?: string;
  /** Publish Home Assistant discovery configs: a sensor per camera (default false). */
  homeassistant?: boolean;
  /** Home Assistant's discovery prefix (default homeassistant). */
  discoveryPrefix?: string;
  /** Serve GET /metrics (Prometheus) on this port; 0 picks a free one (default: no metrics server). */
  metricsPort?: number;
  /** Default 127.0.0.1. */
  metricsHost?: string;
  /** Where connections, reconnections and internal errors are told (default: nowhere). */
  log?: (line: string) => void;
}

export type ResolvedOptions = Required<
  Omit<
    MqttServiceOptions,
    'group' | 'ca' | 'cert' | 'key' | 'username' | 'password' | 'metricsPort' | keyof ServeSizing
  >
> &
  Pick<MqttServiceOptions, 'group' | 'ca' | 'cert' | 'key' | 'username' | 'password' | 'metricsPort'> &
  ServeSizing & {
    model: string;
  };

const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:'];

export function resolveOptions(options: MqttServiceOptions): ResolvedOptions {
  const resolved = {
    ...DEFAULT_TOPICS,
    top: 5,
    qos: 1 as QoS,
    retain: false,
    clientId: `resnet-wasm-${hostname()}`,
    sessionExpirySeconds: 300,
    maxBytes: DEFAULT_LIMITS.maxBodyBytes,
    maxPixels: DEFAULT_LIMITS.maxPixels,
    timeoutMs: DEFAULT_LIMITS.timeoutMs,
    maxRequests: DEFAULT_LIMITS.queueSize,
    homeassistant: false,
    discoveryPrefix: DEFAULT_DISCOVERY_PREFIX,
    metricsHost: '127.0.0.1',
    log: () => {},
    ...definedOnly(options),
    model: basename(options.modelPath).replace(/\.rnw$/, ''),
    ...sizing(options),
  };
  checkBroker(resolved.broker);
  checkFilter(resolved.images, 'the image topic');
  for (const name of ['result', 'error', 'status'] as const) checkTemplate(resolved[name], `the ${name} topic`);
  if (resolved.group !== undefined && !/^[^/+#]+$/.test(resolved.group))
    throw new MqttOptionError(`the group must be a name without "/", "+" or "#", got "${resolved.group}"`);
  if (![0, 1, 2].includes(resolved.qos)) throw new MqttOptionError(`the QoS must be 0, 1 or 2, got ${resolved.qos}`);
  return resolved;
}

/** Workers and threads as serve sizes them. */
function sizing({ workers, threads }: MqttServiceOptions): ServeSizing {
  if (workers !== undefined && !(Number.isSafeInteger(workers) && workers >= 1))
    throw new OptionError('workers', 'a positive integer', workers);
  return serveSizing(workers, checkThreads(threads), availableParallelism());
}

function checkBroker(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new MqttOptionError(`the broker must be a URL such as mqtt://127.0.0.1:1883, got "${url}"`);
  }
  if (!BROKER_PROTOCOLS.includes(protocol))
    throw new MqttOptionError(`the broker URL must start with mqtt://, mqtts://, ws:// or wss://, got "${url}"`);
}

/** An option given as undefined takes its default. */
function definedOnly<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as T;
}
