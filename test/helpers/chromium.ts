// Debian's Chromium (apt-get install chromium), headless through playwright-core: the browser of the
// web tests (test/web.test.ts) and of the browser benchmarks (bench/browser*.ts).
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** No sandbox (containers), no GPU, nothing fetched in the background that could disturb timings. */
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

/** Why Chromium cannot run here, or null. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`;
}

export interface ChromiumOptions {
  /** Flags beyond FLAGS. */
  args?: string[];
  viewport?: { width: number; height: number };
  permissions?: string[];
  /** The profile's folder (default: a new one in the temporary folder). */
  profile?: string;
}

/** A headless Chromium with a fresh profile of its own (service workers and the Cache API work). */
export function launchChromium(options: ChromiumOptions = {}): Promise<BrowserContext> {
  return chromium.launchPersistentContext(options.profile ?? mkdtempSync(join(tmpdir(), 'resnet-wasm-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, ...(options.args ?? [])],
    viewport: options.viewport,
    permissions: options.permissions,
  });
}
