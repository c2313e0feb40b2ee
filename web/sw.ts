// The service worker: keeps the app's own files so that the page opens without a network. The
// model is not its business: the worker's loadModel keeps the verified file in the Cache API itself
// (and streams it with progress, which a cached fetch through here would hide).
/** A hash of the built files (web/build.js): a new build gets a new cache and drops the old one. */
declare const VERSION: string;

// The little of the service worker scope used here (TypeScript's WebWorker library cannot be
// combined with the DOM one that the rest of the project type-checks against).
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
interface ServiceWorkerScope {
  location: Location;
  clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
}
const sw = self as unknown as ServiceWorkerScope;

const CACHE = `resnet-wasm-app-${VERSION}`;
const FILES = ['./', 'index.html', 'app.js', 'worker.js'];

sw.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(FILES))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (event) => {
  const stale = async () => (await caches.keys()).filter((key) => key.startsWith('resnet-wasm-app-') && key !== CACHE);
  event.waitUntil(
    stale()
      .then((keys) => Promise.all(keys.map((key) => caches.delete(key))))
      .then(() => sw.clients.claim()),
  );
});

/** The network first, so that a deployed update shows at once; the cached copy when offline. */
sw.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== sw.location.origin || url.pathname.endsWith('.rnw')) return;
  event.respondWith(
    fetch(event.request).catch(
      async () => (await caches.match(event.request, { cacheName: CACHE })) ?? Response.error(),
    ),
  );
});

export {};
