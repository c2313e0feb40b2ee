// resnet-wasm/mqtt: the MQTT classification gateway as a library (dist/mqtt.js, its own entry, so
// that those who only classify never load MQTT.js).

export { BrokerError, MqttOptionError } from './errors.ts';
export type { MqttMetrics } from './metrics.ts';
export type { MqttServiceOptions, QoS } from './options.ts';
export type { ErrorPayload, ResultPayload } from './payloads.ts';
export { type MqttService, mqttService } from './service.ts';
export type { Topics } from './topics.ts';
export { DEFAULT_TOPICS } from './topics.ts';
