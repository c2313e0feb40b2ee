/**
 * The gateway's connection to its broker (MQTT.js, loaded only here and only when a gateway starts):
 * MQTT 5 with a persistent session and `offline` as the retained Last Will. A broker that cannot be
 * reached is tried again with a growing wait, before the first connection as after a drop; a broker
 * that refuses the gateway's credentials or certificates, or whose certificate the gateway refuses,
 * ends the first attempt with a BrokerError instead of a silent retry loop.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { BrokerError } from './errors.ts';
import type { ResolvedOptions } from './options.ts';

/** Reconnection waits, doubling from the first to the last, back to the first once connected. */
const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 30_000;
/** A CONNACK later than this, the attempt is abandoned and tried again. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Errors of the network, not of the broker's judgement: worth waiting out. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

export interface BrokerConnection {
  client: MqttClient;
  /** Ends the connection: DISCONNECT if connected (the Last Will is not sent), no more reconnections. */
  end(): Promise<void>;
}

export async function connectBroker(options: ResolvedOptions, statusTopic: string): Promise<BrokerConnection> {
  const { connect } = await import('mqtt');
  const client = connect(options.broker, clientOptions(options, statusTopic));
  const retries = reconnectWithBackoff(client, options);
  try {
    await firstConnection(client, options.broker);
    return {
      client,
      async end() {
        retries.stop();
        await client.endAsync(!client.connected);
      },
    };
  } catch (error) {
    retries.stop();
    await client.endAsync(true);
    throw error;
  }
}

function clientOptions(options: ResolvedOptions, statusTopic: string): IClientOptions {
  const { clientId, sessionExpirySeconds, ca, cert, key, username, password } = options;
  return {
    clientId,
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: sessionExpirySeconds },
    will: { topic: statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    // Reconnections are ours (reconnectWithBackoff), and so is subscribing after one (the service).
    reconnectPeriod: 0,
    resubscribe: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    rejectUnauthorized: true,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  };
}

/** Resolves on the first CONNACK; rejects on the first error that waiting would not cure. */
function firstConnection(client: MqttClient, broker: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onConnect = () => {
      client.off('error', onError);
      resolve();
    };
    const onError = (error: Error & { code?: string | number }) => {
      if (typeof error.code === 'string' && NETWORK_ERRORS.has(error.code)) return;
      client.off('connect', onConnect).off('error', onError);
      reject(refusal(broker, error));
    };
    client.once('connect', onConnect).on('error', onError);
  });
}

/** The broker's CONNACK reason (a number) or the TLS layer's complaint, with what to check. */
function refusal(broker: string, error: Error & { code?: string | number }): BrokerError {
  if (typeof error.code === 'number') {
    return new BrokerError(
      `the broker ${broker} refused the connection: ${error.message} (check --username and the password, or the client id)`,
      { cause: error },
    );
  }
  return new BrokerError(`the TLS connection to ${broker} failed: ${error.message} (check --ca, --cert and --key)`, {
    cause: error,
  });
}

/**
 * After each lost connection (or failed attempt), reconnects after a wait that doubles up to
 * LAST_RETRY_MS, keeping the unacknowledged QoS 1/2 packets (MQTT.js's stores) to send again.
 */
function reconnectWithBackoff(client: MqttClient, options: ResolvedOptions): { stop(): void } {
  let wait = FIRST_RETRY_MS;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let reason = 'connection closed';
  client.on('connect', () => {
    wait = FIRST_RETRY_MS;
    reason = 'connection closed';
  });
  client.on('error', (error) => {
    reason = error.message;
  });
  client.on('close', () => {
    if (stopped || timer !== undefined) return;
    options.log(`not connected to ${options.broker} (${reason}): trying again in ${wait} ms`);
    timer = setTimeout(() => {
      timer = undefined;
      if (!stopped) client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, wait);
    wait = Math.min(2 * wait, LAST_RETRY_MS);
  });
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
