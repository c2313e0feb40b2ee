// Serves the built web app (build/web/) on this machine. With the COOP/COEP headers (default) the
// page is cross-origin isolated, which lets the model share its memory with worker threads;
// --no-isolation serves it without them, as a plain static host would (one thread).
//
//   node --import tsx web/serve.ts [--port 8080] [--host 127.0.0.1] [--no-isolation] [--root build/web]

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface DemoOptions {
  root?: string;
  port?: number;
  host?: string;
  /** Send Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy (default true). */
  isolated?: boolean;
}

export interface DemoServer {
  url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.rnw': 'application/octet-stream',
  // Compiled while streamed only when served as such (the browser benchmark's onnxruntime-web).
  '.wasm': 'application/wasm',
};

export async function serveDemo(options: DemoOptions = {}): Promise<DemoServer> {
  const root = resolve(options.root ?? 'build/web');
  const isolation =
    options.isolated === false
      ? {}
      : { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  const server = createServer(async (req, res) => {
    const file = requestedFile(root, req.url ?? '/');
    const size =
      file === null
        ? -1
        : await stat(file).then(
            (s) => (s.isFile() ? s.size : -1),
            () => -1,
          );
    if (file === null || size < 0 || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, isolation).end('not found');
      return;
    }
    // no-cache: the browser revalidates, so a rebuilt app is picked up on the next load.
    res.writeHead(200, {
      ...isolation,
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': 'no-cache',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise<void>((done) => server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/`,
    close: () => {
      server.closeAllConnections();
      return new Promise((done) => server.close(() => done()));
    },
  };
}

/** The file under `root` that a request path names (a folder: its index.html), or null outside it. */
function requestedFile(root: string, url: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url, 'http://host').pathname);
  } catch {
    return null;
  }
  const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
  return file.startsWith(root + sep) ? file : null;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      root: { type: 'string', default: 'build/web' },
      'no-isolation': { type: 'boolean', default: false },
    },
  });
  const isolated = !values['no-isolation'];
  const server = await serveDemo({ root: values.root, port: Number(values.port), host: values.host, isolated });
  console.log(`resnet-wasm demo: ${server.url}`);
  console.log(
    isolated
      ? '  cross-origin isolated (COOP/COEP): the model runs on several threads'
      : '  not isolated (--no-isolation): the model runs on one thread',
  );
}
