// A cross-origin isolated page in Debian's Chromium for the browser benchmarks: the files given are
// linked into a temporary folder, served with COOP/COEP by the web app's server (web/serve.ts) and
// opened in a fresh headless Chromium (test/helpers/chromium.ts).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/chromium.ts';
import { serveDemo } from '../web/serve.ts';

export interface BenchPage {
  page: Page;
  context: BrowserContext;
  /** Of the served folder, with a trailing slash. */
  url: string;
  close(): Promise<void>;
}

/** Serves `files` (URL path → a file or folder to link, or bytes to write) and opens /index.html. */
export async function openBenchPage(files: Record<string, string | Uint8Array>): Promise<BenchPage> {
  const root = mkdtempSync(join(tmpdir(), 'resnet-wasm-browser-bench-'));
  const all = {
    '/index.html': new TextEncoder().encode(
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>bench</title>',
    ),
    ...files,
  };
  for (const [path, content] of Object.entries(all)) {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true });
    if (typeof content === 'string') symlinkSync(resolve(content), target);
    else writeFileSync(target, content);
  }
  const server = await serveDemo({ root, port: 0 });
  const context = await launchChromium();
  // tsx keeps function names (esbuild's keepNames), so functions handed to page.evaluate that name
  // a function call its __name helper: the page gets one that does nothing.
  await context.addInitScript('globalThis.__name = (f) => f;');
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') console.error(`bench: page: ${message.text()}`);
  });
  await page.goto(`${server.url}index.html`);
  if (!(await page.evaluate(() => crossOriginIsolated)))
    throw new Error('the benchmark page is not cross-origin isolated');
  return {
    page,
    context,
    url: server.url,
    close: async () => {
      await context.close();
      await server.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
