// resnet-wasm/mqtt: the MQTT classification gateway as a library (dist/mqtt.js, its own entry, so
// that those who only classify never load MQTT.js).
export { mqttService, type MqttService } from './service.ts';
export type { MqttServiceOptions, QoS } from './options.ts';
export type { Topics } from './topics.ts';
export { DEFAULT_TOPICS } from './topics.ts';
export type { ResultPayload, ErrorPayload } from './payloads.ts';
export { MqttOptionError, BrokerError } from './errors.ts';
export type { MqttMetrics } from './metrics.ts';
