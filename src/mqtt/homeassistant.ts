/**
 * Home Assistant MQTT discovery: one sensor per camera whose state is the camera's latest top label
 * (its score, frame and top-k as attributes), available while the gateway's status reads `online`.
 * Published retained under the discovery prefix when a camera is first seen and after every
 * reconnection, so Home Assistant lists the cameras without configuration.
 */
export const DEFAULT_DISCOVERY_PREFIX = 'homeassistant';

export interface DiscoveryContext {
  prefix: string;
  clientId: string;
  model: string;
  statusTopic: string;
}

export interface DiscoveryMessage {
  topic: string;
  payload: string;
}

export function discoveryMessage(context: DiscoveryContext, camera: string, resultTopic: string): DiscoveryMessage {
  const objectId = `${context.clientId}_${camera}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const config = {
    name: `${camera} label`,
    unique_id: objectId,
    state_topic: resultTopic,
    value_template: '{{ value_json.top[0].label }}',
    json_attributes_topic: resultTopic,
    json_attributes_template:
      '{{ {"score": value_json.top[0].score, "frame": value_json.frame, "top": value_json.top} | tojson }}',
    availability_topic: context.statusTopic,
    payload_available: 'online',
    payload_not_available: 'offline',
    icon: 'mdi:cctv',
    device: {
      identifiers: [context.clientId],
      name: `resnet-wasm ${context.clientId}`,
      manufacturer: 'resnet-wasm',
      model: context.model,
    },
  };
  return { topic: `${context.prefix}/sensor/${objectId}/config`, payload: JSON.stringify(config) };
}
