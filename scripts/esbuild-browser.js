// esbuild options for code that runs in browsers (dist/browser.js, the web app): dependencies
// bundled, and every node: module, and sharp (a native decoder for Node), replaced by one that
// throws when imported. The runtime reaches
// node: modules only through dynamic imports on Node-only paths (a file path, worker_threads), so in
// a browser those imports are never evaluated, and no bundler downstream has to resolve them.

/** @type {import('esbuild').Plugin} */
const noNodeModules = {
  name: 'no-node-modules',
  setup(build) {
    build.onResolve({ filter: /^(node:|sharp$)/ }, (args) => ({ path: args.path, namespace: 'no-node' }));
    build.onLoad({ filter: /.*/, namespace: 'no-node' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not available in browsers`)});`,
    }));
  },
};

/** @type {import('esbuild').BuildOptions} */
export const browserOptions = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  plugins: [noNodeModules],
};
