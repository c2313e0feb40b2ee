/**
 * `resnet-wasm mqtt` as a library: a gateway that classifies the frames published on the image
 * topics and answers each on its camera's result topic (or an MQTT 5 requester's response topic).
 * The main thread only does MQTT; frames go to serve's worker pool (src/serve/pool.ts), one per
 * idle worker, the rest waiting in the FrameScheduler where the newest frame of each camera wins.
 */
import type { MqttClient } from 'mqtt';
import { ServeError, toServeError } from '../serve/errors.ts';
import { WorkerPool } from '../serve/pool.ts';
import type { ServeSizing } from '../serve/sizing.ts';
import { type BrokerConnection, connectBroker } from './connection.ts';
import { BrokerError } from './errors.ts';
import { checkFrame, type Frame, frameOf } from './frame.ts';
import { discoveryMessage } from './homeassistant.ts';
import { type MetricsServer, MqttMetrics, serveMetrics } from './metrics.ts';
import { type MqttServiceOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { type ErrorPayload, errorPayload, type ResultPayload, resultPayload } from './payloads.ts';
import { FrameScheduler } from './scheduler.ts';
import { cameraOf, fillTemplate, subscriptionOf } from './topics.ts';

export interface MqttService {
  clientId: string;
  /** Where `online` / `offline` is retained. */
  statusTopic: string;
  metrics: MqttMetrics;
  /** The workers (frames classified at once) and the threads of each, as serve sizes them. */
  sizing: ServeSizing;
  /** e.g. http://127.0.0.1:9464/metrics, when a metrics port was given. */
  metricsUrl?: string;
  /**
   * Graceful stop: unsubscribes, answers the frames received, publishes `offline`, disconnects
   * and stops the workers.
   */
  stop(): Promise<void>;
}

/** Starts the workers (each loads the model), connects, subscribes, then publishes `online`. */
export async function mqttService(input: MqttServiceOptions): Promise<MqttService> {
  const options = resolveOptions(input);
  const scheduler = new FrameScheduler<Frame>();
  let pool: WorkerPool | undefined;
  const metrics = new MqttMetrics(
    () => pool,
    () => scheduler.size,
  );
  pool = await WorkerPool.start({
    modelPath: input.modelPath,
    workers: options.workers,
    threads: options.threads,
    queueSize: options.workers,
    timeoutMs: options.timeoutMs,
    maxPixels: options.maxPixels,
    observer: {
      inferred: (ms) => metrics.inferred(ms),
      workerReplaced: (reason) => {
        metrics.workerReplaced();
        options.log(`worker replaced (${reason})`);
      },
    },
  });
  let metricsServer: MetricsServer | undefined;
  let broker: BrokerConnection | undefined;
  try {
    if (options.metricsPort !== undefined)
      metricsServer = await serveMetrics(metrics, options.metricsHost, options.metricsPort);
    const statusTopic = fillTemplate(options.status, { client: options.clientId });
    broker = await connectBroker(options, statusTopic);
    const gateway = new Gateway(options, statusTopic, pool, scheduler, metrics, broker);
    await gateway.connected();
    const server = metricsServer;
    const running = pool;
    return {
      clientId: options.clientId,
      statusTopic,
      metrics,
      sizing: { workers: options.workers, threads: options.threads },
      ...(server === undefined ? {} : { metricsUrl: server.url }),
      async stop() {
        await gateway.stop();
        await running.close();
        await server?.close();
      },
    };
  } catch (error) {
    await broker?.end();
    await pool.close();
    await metricsServer?.close();
    throw error;
  }
}

/** The longest a stopping gateway waits for the broker at each step (see Gateway.shutdown). */
const STOP_GRACE_MS = 10_000;

class Gateway {
  private readonly client: MqttClient;
  private readonly subscription: string;
  /** Frames handed to the pool and not yet answered. */
  private running = 0;
  private waitingRequests = 0;
  private requestCount = 0;
  private readonly cameras = new Set<string>();
  private readonly publishing = new Set<Promise<unknown>>();
  private idleWaiters: (() => void)[] = [];
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly statusTopic: string,
    private readonly pool: WorkerPool,
    private readonly scheduler: FrameScheduler<Frame>,
    private readonly metrics: MqttMetrics,
    private readonly broker: BrokerConnection,
  ) {
    this.client = broker.client;
    this.subscription = subscriptionOf(options.images, options.group);
    this.client.on('message', (topic, _payload, packet) => this.receive(topic, packet));
    this.client.on('connect', () => {
      options.log(`reconnected to ${options.broker}`);
      this.connected().catch((error) => options.log(`after reconnecting: ${(error as Error).message}`));
    });
  }

  /**
   * On each connection: subscribes (a restarted broker may have lost the session; renewing a kept
   * subscription does not replay retained frames, rh: 1), then says `online` and announces the
   * known cameras to Home Assistant. A subscription the broker refuses (its ACL) is a BrokerError.
   */
  async connected(): Promise<void> {
    await this.client.subscribeAsync(this.subscription, { qos: this.options.qos, rh: 1 }).catch((error: Error) => {
      throw new BrokerError(
        `the broker ${this.options.broker} refused the subscription to ${this.subscription}: ${error.message} (check its ACL)`,
        { cause: error },
      );
    });
    await this.client.publishAsync(this.statusTopic, 'online', { qos: 1, retain: true });
    for (const camera of this.cameras) this.announce(camera);
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /**
   * Each step that needs the broker is skipped without one and waits for it at most STOP_GRACE_MS:
   * a broker that is gone (a gateway stopped with its broker) cannot hold the stop forever.
   */
  private async shutdown(): Promise<void> {
    await this.withinGrace(() => this.client.unsubscribeAsync(this.subscription), 'unsubscribing');
    await this.idle();
    await this.withinGrace(() => Promise.all(this.publishing), 'publishing the last answers');
    await this.withinGrace(
      () => this.client.publishAsync(this.statusTopic, 'offline', { qos: 1, retain: true }),
      'publishing offline',
    );
    await this.broker.end();
  }

  /** Waits for `step` while connected, at most STOP_GRACE_MS; without a broker, not at all. */
  private async withinGrace(step: () => Promise<unknown>, what: string): Promise<void> {
    if (!this.client.connected) return this.options.log(`stopping: not connected, so not ${what}`);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>(
      (resolve) =>
        (timer = setTimeout(() => {
          this.options.log(`stopping: gave up ${what} after ${STOP_GRACE_MS} ms without the broker`);
          resolve();
        }, STOP_GRACE_MS)),
    );
    await Promise.race([
      step().catch((error) => this.options.log(`stopping: ${what}: ${(error as Error).message}`)),
      late,
    ]);
    clearTimeout(timer);
  }

  private receive(topic: string, packet: Parameters<typeof frameOf>[1]): void {
    const frame = frameOf(cameraOf(this.options.images, topic), packet);
    this.metrics.frameReceived();
    if (!this.cameras.has(frame.camera)) {
      this.cameras.add(frame.camera);
      this.announce(frame.camera);
    }
    try {
      checkFrame(frame.bytes, this.options.maxBytes, this.options.maxPixels);
    } catch (error) {
      return this.fail(frame, toServeError(error));
    }
    this.schedule(frame);
    this.pump();
  }

  /** A camera's frame replaces its older waiting one; every MQTT 5 request waits for its answer. */
  private schedule(frame: Frame): void {
    if (frame.responseTopic === undefined) {
      if (this.scheduler.offer(`camera ${frame.camera}`, frame) !== undefined) this.metrics.frameDropped();
      return;
    }
    if (this.waitingRequests >= this.options.maxRequests) {
      return this.fail(
        frame,
        new ServeError(
          'queue-full',
          `${this.waitingRequests} requests are waiting, the most the gateway keeps (maxRequests): try again later`,
        ),
      );
    }
    this.waitingRequests++;
    this.scheduler.offer(`request ${this.requestCount++}`, frame);
  }

  /** Hands waiting frames to idle workers. */
  private pump(): void {
    while (this.running < this.pool.size) {
      const frame = this.scheduler.take();
      if (frame === undefined) break;
      if (frame.responseTopic !== undefined) this.waitingRequests--;
      this.running++;
      void this.classify(frame).finally(() => {
        this.running--;
        this.pump();
      });
    }
    if (this.running === 0 && this.scheduler.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async classify(frame: Frame): Promise<void> {
    try {
      const result = await this.pool.classify(frame.bytes, this.options.top);
      const payload = resultPayload(this.options.clientId, frame, this.options.model, result);
      this.metrics.frameAnswered(payload.ms);
      const retain = this.options.retain && frame.responseTopic === undefined;
      this.publish(frame.responseTopic ?? this.topic(this.options.result, frame.camera), payload, frame, retain);
    } catch (error) {
      this.fail(frame, toServeError(error));
    }
  }

  private fail(frame: Frame, error: ServeError): void {
    this.metrics.failed(error.kind);
    if (error.kind === 'internal' || error.kind === 'worker-crashed')
      this.options.log(`frame ${frame.id} of ${frame.camera}: ${error.message}`);
    this.publish(
      frame.responseTopic ?? this.topic(this.options.error, frame.camera),
      errorPayload(this.options.clientId, frame, error),
      frame,
      false,
    );
  }

  private publish(topic: string, payload: ResultPayload | ErrorPayload, frame: Frame, retain: boolean): void {
    const properties = {
      contentType: 'application/json',
      ...(frame.correlationData === undefined ? {} : { correlationData: frame.correlationData }),
    };
    this.track(this.client.publishAsync(topic, JSON.stringify(payload), { qos: this.options.qos, retain, properties }));
  }

  private announce(camera: string): void {
    if (!this.options.homeassistant) return;
    const context = {
      prefix: this.options.discoveryPrefix,
      clientId: this.options.clientId,
      model: this.options.model,
      statusTopic: this.statusTopic,
    };
    const { topic, payload } = discoveryMessage(context, camera, this.topic(this.options.result, camera));
    this.track(this.client.publishAsync(topic, payload, { qos: 1, retain: true }));
  }

  /** Keeps a publish until the broker has it, so that stop() waits for it; a failure is told, not thrown. */
  private track(publish: Promise<unknown>): void {
    const tracked = publish
      .catch((error) => this.options.log(`publish: ${(error as Error).message}`))
      .finally(() => this.publishing.delete(tracked));
    this.publishing.add(tracked);
  }

  private topic(template: string, camera: string): string {
    return fillTemplate(template, { camera, client: this.options.clientId });
  }

  /** Resolves once no frame waits or runs. */
  private idle(): Promise<void> {
    if (this.running === 0 && this.scheduler.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
