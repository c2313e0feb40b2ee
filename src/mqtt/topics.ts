/**
 * Where a gateway reads frames and writes its answers: the image topic filter (whose `+` levels name
 * the camera), the templates of the result, error and status topics, and the shared subscription
 * that splits the frames between the gateways of a group.
 */
import { MqttOptionError } from './errors.ts';

export interface Topics {
  /** The filter frames arrive on; its `+` (and `#`) levels name the camera. */
  images: string;
  /** Each answer, `{camera}` filled in. */
  result: string;
  /** Each refused or failed frame, `{camera}` filled in. */
  error: string;
  /** `online` / `offline`, retained, `{client}` filled in with the client id. */
  status: string;
}

export const DEFAULT_TOPICS: Topics = {
  images: 'cameras/+/image',
  result: 'resnet-wasm/{camera}/result',
  error: 'resnet-wasm/{camera}/error',
  status: 'resnet-wasm/{client}/status',
};

/** Throws unless `filter` is an MQTT topic filter whose wildcards take whole levels, `#` last. */
export function checkFilter(filter: string, option: string): void {
  const levels = filter.split('/');
  const wrong = levels.findIndex(
    (level, i) =>
      (level.includes('+') && level !== '+') || (level.includes('#') && (level !== '#' || i !== levels.length - 1)),
  );
  if (filter === '' || filter.startsWith('$share/') || wrong >= 0) {
    throw new MqttOptionError(
      `${option} must be an MQTT topic filter ("+" and "#" take whole levels, "#" last, no $share: use --group), got "${filter}"`,
    );
  }
}

/** Throws unless `template` names a topic (no wildcards) and uses only {camera} and {client}. */
export function checkTemplate(template: string, option: string): void {
  const unknown = template.match(/\{(?!camera\}|client\})[^}]*\}/);
  if (template === '' || /[+#]/.test(template) || unknown !== null) {
    throw new MqttOptionError(
      `${option} must be a topic with {camera} and {client} as its only placeholders, got "${template}"`,
    );
  }
}

/** The topic to subscribe to: `filter` itself, or through the broker's shared subscription `group`. */
export function subscriptionOf(filter: string, group: string | undefined): string {
  return group === undefined ? filter : `$share/${group}/${filter}`;
}

/**
 * The camera a frame's topic names: the levels matched by the filter's wildcards, joined by `/`
 * (`cameras/+/image` and `cameras/porch/image`: `porch`); a filter without wildcards names the
 * camera by the whole topic.
 */
export function cameraOf(filter: string, topic: string): string {
  const pattern = filter.split('/');
  const levels = topic.split('/');
  const named = pattern.flatMap((level, i) => (level === '+' ? [levels[i]] : level === '#' ? levels.slice(i) : []));
  return named.length === 0 ? topic : named.join('/');
}

export function fillTemplate(template: string, values: { camera?: string; client: string }): string {
  return template.replaceAll('{camera}', values.camera ?? '').replaceAll('{client}', values.client);
}
