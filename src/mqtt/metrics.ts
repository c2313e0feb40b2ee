/**
 * The gateway's Prometheus metrics: serve's pool metrics (inference time, errors by kind, workers,
 * frames waiting) plus frames received, answered and dropped (replaced by a newer frame of their
 * camera), and the time from a frame's arrival to its answer. Every received frame ends answered,
 * dropped or in resnet_wasm_errors_total.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram } from 'prom-client';
import { LATENCY_BUCKETS_S, PoolMetrics } from '../serve/metrics.ts';

export class MqttMetrics extends PoolMetrics {
  private readonly received = new Counter({
    name: 'resnet_wasm_mqtt_frames_received_total',
    help: 'Frames received on the image topics',
    registers: [this.registry],
  });
  private readonly answered = new Counter({
    name: 'resnet_wasm_mqtt_frames_answered_total',
    help: 'Frames classified and answered',
    registers: [this.registry],
  });
  private readonly dropped = new Counter({
    name: 'resnet_wasm_mqtt_frames_dropped_total',
    help: 'Frames replaced, unclassified, by a newer frame of their camera',
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'resnet_wasm_mqtt_frame_duration_seconds',
    help: "Time from a frame's arrival to its answer",
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });

  frameReceived(): void {
    this.received.inc();
  }

  frameAnswered(ms: number): void {
    this.answered.inc();
    this.latency.observe(ms / 1000);
  }

  frameDropped(): void {
    this.dropped.inc();
  }
}

export interface MetricsServer {
  /** e.g. http://127.0.0.1:9464/metrics */
  url: string;
  close(): Promise<void>;
}

/** GET /metrics in Prometheus' text format on its own port: the gateway has no HTTP service otherwise. */
export async function serveMetrics(metrics: MqttMetrics, host: string, port: number): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/metrics') return response.writeHead(404).end('GET /metrics\n');
    metrics.text().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (error) => response.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const { address, port: bound } = server.address() as AddressInfo;
  const shown = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${shown}:${bound}/metrics`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
