/** What stops a gateway from starting: an option that cannot work, or a broker that refuses it. */
import { ResnetWasmError } from '../errors.ts';

/** A bad broker URL, topic, template, group or QoS; the message names the option. */
export class MqttOptionError extends ResnetWasmError {
  override name = 'MqttOptionError';
}

/** The broker refused the gateway: its credentials, its certificate, or the broker's certificate. */
export class BrokerError extends ResnetWasmError {
  override name = 'BrokerError';
}
