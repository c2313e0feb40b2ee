// A real Mosquitto for the MQTT tests and bench: a generated config on a free loopback port,
// persistence off, its files in a temp folder of its own; ready once it logs that it runs (an event,
// not a sleep). TLS: a CA, the broker's and a client's certificates made with openssl, a password
// file made with mosquitto_passwd.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** The broker, where Debian puts it (/usr/sbin may not be on a user's PATH), or null. */
export const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((path) => existsSync(path)) ?? null;
export const MOSQUITTO_PASSWD =
  ['/usr/bin/mosquitto_passwd', '/usr/sbin/mosquitto_passwd'].find((path) => existsSync(path)) ?? null;

export interface TlsFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface BrokerOptions {
  /** TLS with client certificates required, and no anonymous clients. */
  tls?: TlsFiles;
  /** A mosquitto_passwd file: clients must log in. */
  passwordFile?: string;
}

export interface Broker {
  port: number;
  /** mqtt://127.0.0.1:PORT, or mqtts:// with TLS */
  url: string;
  /** The broker's temp folder. */
  dir: string;
  /** Stops the broker (SIGTERM) and waits for its exit; its retained messages are gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

export async function startMosquitto(options: BrokerOptions = {}): Promise<Broker> {
  if (MOSQUITTO === null) throw new Error('mosquitto is not installed (Debian: apt-get install mosquitto)');
  const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-mosquitto-'));
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(config, configText(port, options));
  let child = await run(config);
  return {
    port,
    url: `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    dir,
    stop: () => stop(child),
    async restart() {
      child = await run(config);
    },
    async close() {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function configText(port: number, { tls, passwordFile }: BrokerOptions): string {
  const lines = [
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${passwordFile === undefined && tls === undefined}`,
    'persistence false',
    // Started as root, Mosquitto would switch to its own user, who cannot read the temp folder.
    `user ${userInfo().username}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
  ];
  if (passwordFile !== undefined) lines.push(`password_file ${passwordFile}`);
  if (tls !== undefined)
    lines.push(
      `cafile ${tls.ca}`,
      `certfile ${tls.serverCert}`,
      `keyfile ${tls.serverKey}`,
      'require_certificate true',
    );
  return `${lines.join('\n')}\n`;
}

/** Starts mosquitto; resolves once it logs that it runs, rejects if it exits first. */
function run(config: string): Promise<ChildProcess> {
  const child = spawn(MOSQUITTO!, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    // Its log goes to stderr, which C's stdio does not buffer: the line comes when it is written.
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (/mosquitto version \S+ running/.test(log)) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve(child);
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`mosquitto exited (${code}) before running:\n${log}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** A port nobody listens on now: the system's pick for a listener that is closed at once. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A CA, the broker's certificate for 127.0.0.1 and a client's certificate, all signed by that CA (P-256 keys, a day). */
export function makeCertificates(dir: string, name = 'ca'): TlsFiles {
  const file = (base: string) => join(dir, base);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...key,
    '-keyout',
    file(`${name}.key`),
    '-out',
    file(`${name}.pem`),
    '-days',
    '1',
    '-subj',
    `/CN=resnet-wasm test ${name}`,
  );
  const sign = (who: string, subject: string, extensions: string) => {
    writeFileSync(file(`${who}.ext`), extensions);
    openssl('req', ...key, '-keyout', file(`${who}.key`), '-out', file(`${who}.csr`), '-subj', subject);
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${who}.csr`),
      '-CA',
      file(`${name}.pem`),
      '-CAkey',
      file(`${name}.key`),
      '-CAcreateserial',
      '-out',
      file(`${who}.pem`),
      '-days',
      '1',
      '-extfile',
      file(`${who}.ext`),
    );
  };
  sign(`${name}-server`, '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\n');
  sign(`${name}-client`, '/CN=resnet-wasm gateway', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: file(`${name}.pem`),
    serverCert: file(`${name}-server.pem`),
    serverKey: file(`${name}-server.key`),
    clientCert: file(`${name}-client.pem`),
    clientKey: file(`${name}-client.key`),
  };
}

/** A Mosquitto password file with one user. */
export function makePasswordFile(dir: string, user: string, password: string): string {
  if (MOSQUITTO_PASSWD === null)
    throw new Error('mosquitto_passwd is not installed (Debian: apt-get install mosquitto)');
  const path = join(dir, 'passwords');
  execFileSync(MOSQUITTO_PASSWD, ['-b', '-c', path, user, password], { stdio: 'pipe' });
  return path;
}
