/**
 * Where the packaged ImageNet ResNet-50 lives: `weights/default.rnw` at the package's root, which
 * is this module's parent folder both here (src/) and once bundled (dist/). In Node it is a
 * `file:` URL next to the installed package, wherever the caller runs; in a browser, a URL next to
 * the served runtime. The package exports it as `resnet-wasm/weights/default.rnw` for bundlers.
 */
export function defaultModelUrl(): URL {
  return new URL('../weights/default.rnw', import.meta.url);
}
