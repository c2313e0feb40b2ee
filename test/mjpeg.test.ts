// `classify --stream -`: MJPEG on stdin, one JSON line per classified frame, stale frames dropped.
// Streams are made by Debian's ffmpeg from the test photos (those tests skip without it); the frame
// splitter is checked on its own with hostile chunking and segments.

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../src/runtime/model.ts';
import { JpegSplitter } from '../src/stream/mjpeg.ts';
import { mulberry32 } from './helpers/random.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'resnet-wasm.js');
const photo = (name: string) => join(ROOT, 'test', 'photos', name);
const CAT_CLASSES = ['tabby', 'tiger cat', 'Egyptian cat'];

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
if (!hasFfmpeg) console.log('mjpeg.test.ts: the ffmpeg streams are skipped: no ffmpeg (apt-get install ffmpeg)');
const withFfmpeg = hasFfmpeg ? test : test.skip;

/** A photo as one MJPEG frame (baseline JPEG), as ffmpeg's mjpeg muxer writes it. */
function ffmpegFrame(file: string, width: number): Uint8Array {
  const r = spawnSync('ffmpeg', [
    '-v',
    'error',
    '-i',
    file,
    '-vf',
    `scale=${width}:-2`,
    '-frames:v',
    '1',
    '-q:v',
    '3',
    '-f',
    'mjpeg',
    '-',
  ]);
  assert.is(r.status, 0, String(r.stderr));
  return new Uint8Array(r.stdout);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A JPEG with an APP1 segment right after SOI whose payload holds a whole small "JPEG" (FF D8 ... FF D9). */
function withThumbnail(jpeg: Uint8Array): Uint8Array {
  const payload = new Uint8Array([0x45, 0x78, 0x69, 0x66, 0, 0, 0xff, 0xd8, 0xff, 0xd9, 0xff, 0x00, 0xff, 0xd9]);
  const app1 = new Uint8Array([0xff, 0xe1, 0, payload.length + 2, ...payload]);
  return concat([jpeg.subarray(0, 2), app1, jpeg.subarray(2)]);
}

test('the splitter returns each JPEG whole, whatever the chunking, past thumbnails and garbage', () => {
  const jpegs = ['rocket.jpg', 'variants/chelsea-progressive.jpg', 'variants/chelsea-gray.jpg'].map(
    (f) => new Uint8Array(readFileSync(photo(f))),
  );
  const frames = [withThumbnail(jpegs[0]), jpegs[1], jpegs[2], jpegs[0]];
  const garbage = new Uint8Array([0x00, 0xff, 0x12, 0xff]);
  const stream = concat([garbage, frames[0], frames[1], garbage, frames[2], frames[3]]);
  const rng = mulberry32(5);
  for (const maxChunk of [1, 7, 4096, stream.length]) {
    const splitter = new JpegSplitter();
    const out: Uint8Array[] = [];
    for (let at = 0; at < stream.length; ) {
      const n = Math.min(stream.length - at, 1 + Math.floor(rng() * maxChunk));
      out.push(...splitter.push(stream.slice(at, at + n)));
      at += n;
    }
    assert.equal(out, frames, `chunks of up to ${maxChunk} bytes`);
    assert.is(splitter.pendingBytes, 0);
    assert.is(splitter.corrupt, 0);
  }
});

test('a frame that breaks the JPEG structure is skipped and counted; the next one is found', () => {
  const jpeg = new Uint8Array(readFileSync(photo('rocket.jpg')));
  // SOI, an APP0 segment of 4 bytes, then 00 where the next marker's FF is due.
  const broken = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0x00]);
  const splitter = new JpegSplitter();
  const out = splitter.push(concat([broken, jpeg]));
  assert.equal(out, [jpeg]);
  assert.is(splitter.corrupt, 1);
});

test('a frame cut short by the next one is counted as truncated, not passed on; so is one cut by the end', () => {
  const jpeg = new Uint8Array(readFileSync(photo('rocket.jpg')));
  const splitter = new JpegSplitter();
  const out = splitter.push(concat([jpeg.subarray(0, jpeg.length >> 1), jpeg, jpeg.subarray(0, 1000)]));
  assert.equal(out, [jpeg]);
  assert.is(splitter.truncated, 1);
  assert.is(splitter.corrupt, 0);
  assert.is(splitter.pendingBytes, 1000);
});

interface Line {
  frame?: number;
  t?: number;
  dropped?: number;
  top?: { label: string }[];
  summary?: { bytes: number; frames: number; classified: number; dropped: number; corrupt: number; truncated: number };
}

/**
 * Runs `classify --stream -`, feeding stdin with `feed`; the JSON lines it printed. `feed` may wait
 * for the nth line of output (`printed(n)`), to pace its frames by the answers rather than a clock.
 */
async function classifyStream(
  feed: (stdin: NodeJS.WritableStream, printed: (lines: number) => Promise<void>) => Promise<void> | void,
  expectedCode = 0,
): Promise<Line[] & { stderr?: string }> {
  const child = spawn(process.execPath, [CLI, 'classify', '--stream', '-', '--top', '1'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((done) => child.on('close', done));
  const printed = async (lines: number) => {
    while (stdout.split('\n').length <= lines) {
      if (child.exitCode !== null)
        throw new Error(`the CLI exited after ${stdout.split('\n').length - 1} lines: ${stderr}`);
      await Promise.race([once(child.stdout, 'data'), exited]);
    }
  };
  await feed(child.stdin, printed);
  assert.is(await exited, expectedCode, stderr);
  return Object.assign(
    stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    { stderr },
  );
}

/** 40 frames of the cat at once, as ffmpeg's MJPEG muxer writes them. */
function catFrames(): Promise<Uint8Array> {
  const ffmpeg = spawn('ffmpeg', [
    '-v',
    'error',
    '-loop',
    '1',
    '-i',
    photo('chelsea.png'),
    '-frames:v',
    '40',
    '-vf',
    'scale=300:-2',
    '-q:v',
    '3',
    '-f',
    'mjpeg',
    '-',
  ]);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    ffmpeg.stdout.on('data', (c: Buffer) => chunks.push(c));
    ffmpeg.on('close', () => resolve(new Uint8Array(Buffer.concat(chunks))));
  });
}

withFfmpeg(
  'ffmpeg writes 40 frames of the cat at once: the newest are classified, the stale dropped and counted',
  async () => {
    const lines = await classifyStream(async (stdin) => void stdin.end(await catFrames()));
    const summary = lines.pop()!.summary!;
    assert.is(summary.frames, 40);
    assert.is(summary.classified, lines.length);
    assert.ok(summary.dropped > 0, 'frames come faster than they are classified');
    assert.is(summary.classified + summary.dropped, 40);
    assert.is(
      lines.reduce((n, l) => n + l.dropped!, 0),
      summary.dropped,
      'each line counts the frames dropped before it',
    );
    assert.is(lines[lines.length - 1].frame, 40, 'the last frame is classified');
    for (const line of lines)
      assert.ok(CAT_CLASSES.includes(line.top![0].label), `frame ${line.frame}: ${line.top![0].label}`);
    for (let i = 1; i < lines.length; i++)
      assert.ok(lines[i].t! >= lines[i - 1].t! && lines[i].frame! > lines[i - 1].frame!, 'frames and times increase');
  },
);

withFfmpeg(
  'model.classifyStream on a Node stream and on a fetch body: increasing frames and times, the newest classified',
  async () => {
    const mjpeg = await catFrames();
    const model = await loadModel();
    try {
      const slowly = async function* () {
        for (let at = 0; at < mjpeg.length; at += 30000) {
          yield mjpeg.subarray(at, at + 30000);
          await new Promise((done) => setImmediate(done));
        }
      };
      for (const source of [
        Readable.from(slowly()),
        new Response(Readable.toWeb(Readable.from(slowly())) as ReadableStream).body!,
      ]) {
        const stream = model.classifyStream(source, { top: 1 });
        const results = [];
        for await (const result of stream) results.push(result);
        assert.is(stream.summary.frames, 40);
        assert.is(stream.summary.bytes, mjpeg.length);
        assert.is(stream.summary.classified, results.length);
        assert.is(stream.summary.classified + stream.summary.dropped, 40);
        assert.is(
          results.reduce((n, r) => n + r.dropped, 0),
          stream.summary.dropped,
        );
        assert.is(results[results.length - 1].frame, 40);
        for (let i = 1; i < results.length; i++) {
          assert.ok(
            results[i].frame > results[i - 1].frame && results[i].t >= results[i - 1].t,
            `result ${i}: frame and time increase`,
          );
        }
        assert.ok(results[results.length - 1].t > results[0].t, 'the stream took time');
        for (const r of results) assert.ok(CAT_CLASSES.includes(r.top[0].label), r.top[0].label);
      }
      // Leaving the loop early stops reading: the source is destroyed.
      const source = Readable.from(slowly());
      for await (const result of model.classifyStream(source)) if (result) break;
      await new Promise((done) => setImmediate(done));
      assert.ok(source.destroyed, 'the source was released');
      assert.throws(() => model.classifyStream(source, { top: 0 }), /top must be a positive integer, got 0/);
    } finally {
      model.dispose();
    }
  },
);

withFfmpeg(
  'a stream with no JPEG frame (H.264) exits 1 naming the cause; an empty one too; a truncated last frame is counted',
  async () => {
    const h264 = spawnSync('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=160x120:rate=10',
      '-frames:v',
      '10',
      '-c:v',
      'libx264',
      '-f',
      'h264',
      '-',
    ]);
    assert.is(h264.status, 0, String(h264.stderr));
    const notMjpeg = await classifyStream((stdin) => void stdin.end(h264.stdout), 1);
    assert.equal(notMjpeg[0].summary!.frames, 0);
    assert.match(
      notMjpeg.stderr!,
      /stdin: no JPEG frame in \d+ bytes: the stream is not MJPEG.*ffmpeg -i INPUT -f mjpeg -/,
    );
    const empty = await classifyStream((stdin) => void stdin.end(), 1);
    assert.match(empty.stderr!, /stdin: the stream ended before any byte arrived/);
    const frame = ffmpegFrame(photo('chelsea.png'), 300);
    const cut = await classifyStream(
      (stdin) => void stdin.end(concat([frame, frame.subarray(0, frame.length >> 1), frame, frame.subarray(0, 100)])),
    );
    const summary = cut.pop()!.summary!;
    assert.equal(
      { ...summary, dropped: 0 },
      {
        bytes: 3 * frame.length + (frame.length >> 1) + 100 - frame.length,
        frames: 2,
        classified: summary.classified,
        dropped: 0,
        corrupt: 0,
        truncated: 2,
      },
    );
  },
);

withFfmpeg('frames slower than classification: each one is classified, none dropped, each with its class', async () => {
  const frames = [
    ffmpegFrame(photo('chelsea.png'), 448),
    ffmpegFrame(photo('coffee.png'), 448),
    ffmpegFrame(photo('chelsea.png'), 448),
  ];
  const lines = await classifyStream(async (stdin, printed) => {
    for (const [i, frame] of frames.entries()) {
      stdin.write(frame);
      await printed(i + 1);
    }
    stdin.end();
  });
  const summary = lines.pop()!.summary!;
  assert.equal(summary, {
    bytes: frames.reduce((n, f) => n + f.length, 0),
    frames: 3,
    classified: 3,
    dropped: 0,
    corrupt: 0,
    truncated: 0,
  });
  assert.equal(
    lines.map((l) => [l.frame, l.dropped]),
    [
      [1, 0],
      [2, 0],
      [3, 0],
    ],
  );
  assert.ok(CAT_CLASSES.includes(lines[0].top![0].label) && CAT_CLASSES.includes(lines[2].top![0].label));
  assert.is(lines[1].top![0].label, 'espresso');
});

test.run();
