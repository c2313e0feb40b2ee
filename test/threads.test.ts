// Threads split every layer's work; each output byte is computed by one slice with the same
// arithmetic, so the logits must be the same bits for any thread count.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import { readModel } from '../src/format/reader.ts';
import { Network } from '../src/runtime/network.ts';
import { mulberry32 } from './helpers/random.ts';

test('ResNet-18 logits are bit-identical on 1, 2 and 3 threads, direct and Winograd', async () => {
  const { header, payloads } = readModel(benchmarkModel());
  const rng = mulberry32(11);
  const inputs = Array.from({ length: 3 }, () =>
    Uint8Array.from({ length: 224 * 224 * 3 }, () => Math.floor(rng() * 256)),
  );
  const results: Float32Array[][] = [];
  for (const options of [{ threads: 1 }, { threads: 2 }, { threads: 3 }, { threads: 2, winograd: false }]) {
    const net = await Network.create(
      header,
      payloads.map((p) => p.length),
      options,
    );
    payloads.forEach((p, i) => net.setParameters(i, p));
    assert.is(net.threads, options.threads);
    results.push(inputs.map((input) => net.run(input)));
    net.close();
  }
  for (const other of results.slice(1)) assert.equal(other, results[0]);
  assert.not.equal(results[0][0], results[0][1], 'different inputs, different logits');
});

test.run();
