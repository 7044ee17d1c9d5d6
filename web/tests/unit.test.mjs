// Fast checks of the page's pure helpers and of the static server's headers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer } from '../serve.mjs';
import { classifyError } from '../src/errors.js';
import { fitWithin } from '../src/images.js';
import { ENCODING_NAMES, signatureAdapter } from '../src/signature.js';
import { grantThreads, wasmThreads } from '../src/threads.js';
import { rehearsalArtifacts, storedBytes } from '../src/rehearsal.js';
import { createMachine, State } from '../src/machine.js';
import { requestRules, roundHalfEven, SCHEMA_VERSION, workingSize } from '../src/working-size.js';
import { estimateMs, formatDuration, planMs } from '../src/estimate.js';
import { encodingKeys } from '../src/encodings.js';
import { cropPixels, cuts, inside, pastePiece, pieceMargins, planPieces } from '../src/pieces.js';

const entry = (name, dtype = 'DT_FLOAT') => ({ name, dtype });

// The controls' and the encodings' inputs (convert/contract.py), as the converter names them.
const CONTROLS = Object.fromEntries(
  [
    'style_resolution',
    'style2',
    'mix',
    'mask',
    'keep_colors',
    'tile',
    'stream',
    'measure',
    'content_moments',
    ...ENCODING_NAMES,
  ].map((n) => [`${n}:0`, entry(`${n}:0`)]),
);
// The outputs: the result and the encodings.
const OUTPUTS = Object.fromEntries(
  ['result', 'content_moments', ...ENCODING_NAMES].map((n, i) => [n, entry(`Identity_${i}:0`)]),
);

describe('signatureAdapter', () => {
  it('finds the logical names behind the converter’s keys and tensor names', () => {
    const adapter = signatureAdapter({
      inputs: {
        strength: entry('strength:0'),
        'content:0': entry('content:0'),
        'style:0': entry('style:0'),
        serving_default_iterations: entry('serving_default_iterations:0', 'DT_INT32'),
        'max_resolution:0': entry('max_resolution:0', 'DT_INT32'),
        ...CONTROLS,
      },
      outputs: OUTPUTS,
    });
    assert.deepEqual(adapter.inputs, {
      content: 'content:0',
      style: 'style:0',
      iterations: 'serving_default_iterations',
      max_resolution: 'max_resolution:0',
      strength: 'strength',
      ...Object.fromEntries(Object.keys(CONTROLS).map((key) => [key.split(':')[0], key])),
    });
    assert.equal(adapter.output, 'result');
    assert.equal(adapter.moments, 'content_moments');
    assert.deepEqual(Object.keys(adapter.encodings), ENCODING_NAMES);
    const controls = Object.fromEntries(Object.keys(CONTROLS).map((k, i) => [k, 6 + i]));
    const feed = adapter.feed({
      content: 1,
      style: 2,
      iterations: 3,
      max_resolution: 4,
      strength: 5,
      ...Object.fromEntries(Object.entries(controls).map(([k, v]) => [k.split(':')[0], v])),
    });
    assert.deepEqual(feed, {
      'content:0': 1,
      'style:0': 2,
      serving_default_iterations: 3,
      'max_resolution:0': 4,
      strength: 5,
      ...controls,
    });
  });

  it('rejects a signature that lacks an input or an output', () => {
    const inputs = Object.fromEntries(
      ['content', 'style', 'iterations', 'max_resolution'].map((n) => [n, entry(`${n}:0`)]),
    );
    Object.assign(inputs, CONTROLS);
    assert.throws(() => signatureAdapter({ inputs, outputs: OUTPUTS }), /lacks strength/);
    inputs.strength = entry('strength:0');
    const { style_relu5_1: _, ...withoutOne } = OUTPUTS;
    assert.throws(
      () => signatureAdapter({ inputs, outputs: withoutOne }),
      /lacks style_relu5_1 \(output\)/,
    );
    assert.throws(() => signatureAdapter({}), /no signature/);
  });
});

describe('pieces', () => {
  it('cuts on the grid, as evenly as it allows (convert/pieces.py, same cases)', () => {
    // 229 / 3 = 76.3 and 152.7, to the nearest multiple of 16: 80 and 160.
    assert.deepEqual(cuts(229, 96, 16), [0, 80, 160, 229]);
    assert.deepEqual(cuts(149, 96, 16), [0, 80, 149]);
    assert.deepEqual(cuts(64, 96, 16), [0, 64]);
    // 4 pieces of 1000: 62.5 and 187.5 grid steps round up.
    assert.deepEqual(cuts(4000, 1024, 16), [0, 1008, 2000, 3008, 4000]);
  });

  it('gives each piece its margins where the image has them', () => {
    const pieces = planPieces({ height: 149, width: 229 }, 96, 48, 16);
    assert.equal(pieces.length, 6);
    assert.deepEqual(pieces[1], {
      keep: { top: 0, left: 80, bottom: 80, right: 160 },
      crop: { top: 0, left: 32, bottom: 128, right: 208 },
    });
    assert.deepEqual(pieces[5].crop, { top: 32, left: 112, bottom: 149, right: 229 });
    assert.deepEqual(inside(pieces[5]), [48, 48, 117, 117]);
    // the encoder's 80 px; and 48 px of features: 6 relu4_1 positions of 8 px
    assert.deepEqual(pieceMargins({ encoderMargin: 80, featuresMargin: 48 }), [80, 128]);
  });

  it('puts the kept parts of the crops back where they came from', () => {
    const width = 229;
    const height = 149;
    const image = { data: new Uint8ClampedArray(width * height * 4), width, height };
    image.data.forEach((_, i) => (image.data[i] = (i * 7919) % 251));
    const target = { data: new Uint8ClampedArray(image.data.length), width, height };
    for (const piece of planPieces(image, 96, 48, 16)) {
      pastePiece(target, cropPixels(image, piece.crop), piece);
    }
    assert.deepEqual(target.data, image.data);
  });
});

describe('encodingKeys', () => {
  const image = (value) => ({ data: new Uint8ClampedArray(16).fill(value), width: 2, height: 2 });
  const request = { content: image(1), style: image(2), style2: null, mix: 0, maxResolution: 0 };

  it('keys the content only for a request in one untiled call', () => {
    assert.match(encodingKeys(request).content, /^2x2:0:/);
    assert.notEqual(
      encodingKeys(request).content,
      encodingKeys({ ...request, content: image(3) }).content,
    );
    // A tiled request, or one in pieces, neither feeds nor keeps the content's encodings.
    assert.equal(encodingKeys({ ...request, tile: 64 }).content, null);
    assert.equal(encodingKeys({ ...request, pieces: { side: 1024 } }).content, null);
    assert.equal(encodingKeys({ ...request, tile: 64 }).style, encodingKeys(request).style);
  });
});

describe('classifyError', () => {
  it('tells memory and lost-context failures from the rest', () => {
    assert.equal(classifyError(new Error('WebGL context lost.')), 'context-lost');
    assert.equal(classifyError(new Error('Failed to allocate memory')), 'oom');
    assert.equal(
      classifyError(new Error('Requested texture size [9000x2] greater than WebGL maximum')),
      'oom',
    );
    assert.equal(classifyError(new RangeError('Array buffer allocation failed')), 'oom');
    assert.equal(classifyError(new Error('Unknown op Foo')), 'other');
  });
});

describe('fitWithin', () => {
  it('keeps small images and scales large ones to the longest side, keeping the ratio', () => {
    assert.deepEqual(fitWithin(300, 200, 512), { width: 300, height: 200, scaled: false });
    assert.deepEqual(fitWithin(3000, 2000, 2048), { width: 2048, height: 1365, scaled: true });
    assert.deepEqual(fitWithin(10, 5000, 100), { width: 1, height: 100, scaled: true });
    assert.deepEqual(fitWithin(640, 480, 0), { width: 640, height: 480, scaled: false });
  });
});

describe('serve.mjs', () => {
  let server;
  let origin;
  before(async () => {
    server = await startServer({ port: 0 });
    origin = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => server.close());

  it('sends the isolation headers and the right MIME types', async () => {
    for (const [path, type] of [
      ['/', 'text/html; charset=utf-8'],
      ['/style.css', 'text/css; charset=utf-8'],
      ['/sw.js', 'text/javascript; charset=utf-8'],
      ['/samples/content-coffee.jpg', 'image/jpeg'],
    ]) {
      const response = await fetch(origin + path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('content-type'), type, path);
      assert.equal(response.headers.get('cross-origin-opener-policy'), 'same-origin');
      assert.equal(response.headers.get('cross-origin-embedder-policy'), 'require-corp');
      await response.arrayBuffer();
    }
  });

  it('serves .wasm as application/wasm and refuses paths outside its folders', async () => {
    const wasm = await fetch(`${origin}/dist/wasm/tfjs-backend-wasm-simd.wasm`);
    assert.equal(wasm.status, 200, 'run `make web` first');
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    await wasm.arrayBuffer();
    // An encoded slash survives URL parsing, so the server itself must refuse the escape.
    for (const path of ['/..%2fpackage.json', '/model/..%2f..%2fpackage.json']) {
      const escape = await fetch(origin + path);
      assert.equal(escape.status, 403, path);
    }
    const missing = await fetch(`${origin}/nothing-here.js`);
    assert.equal(missing.status, 404);
  });
});

describe('wasmThreads', () => {
  it('gives one thread per physical core, at least two when there are two cores, at most 8', () => {
    const byCores = { 1: 1, 2: 2, 3: 2, 4: 2, 6: 3, 8: 4, 16: 8, 64: 8 };
    for (const [cores, threads] of Object.entries(byCores))
      assert.equal(wasmThreads(Number(cores)), threads, `${cores} cores`);
  });

  it('treats a missing or odd core count as one core', () => {
    for (const cores of [undefined, 0, NaN, -4]) assert.equal(wasmThreads(cores), 1);
  });
});

describe('grantThreads', () => {
  // TF.js's rule, applied to what the scope's navigator reports after the grant.
  const tfjsPool = (requested, scope) =>
    Math.min(requested, Math.max(1, Math.floor(scope.navigator.hardwareConcurrency / 2)));
  const scopeWith = (cores) => {
    class FakeNavigator {
      get hardwareConcurrency() {
        return cores;
      }
    }
    return { navigator: new FakeNavigator() };
  };

  it('makes the halving backend arrive at the chosen thread count', () => {
    for (const cores of [1, 2, 3, 8, 16]) {
      const scope = scopeWith(cores);
      const threads = wasmThreads(cores);
      grantThreads(scope, threads);
      assert.equal(tfjsPool(threads, scope), threads, `${cores} cores`);
    }
  });

  it('never reports fewer cores than there are', () => {
    const scope = scopeWith(16);
    assert.equal(grantThreads(scope, 2), 16);
    assert.equal(scope.navigator.hardwareConcurrency, 16);
  });
});

describe('rehearsalArtifacts', () => {
  const specs = [
    { name: 'perm', shape: [3], dtype: 'int32' },
    { name: 'bias', shape: [4], dtype: 'float32' },
    { name: 'kernel', shape: [2, 2, 4, 64], dtype: 'float32', quantization: { dtype: 'uint8' } },
    { name: 'kernel2', shape: [1024], dtype: 'float32', quantization: { dtype: 'float16' } },
  ];
  const artifacts = { modelTopology: { node: [] }, weightSpecs: specs };
  const total = 12 + 16 + 1024 + 2048;

  it('sizes weights by their stored dtype', () => {
    assert.deepEqual(specs.map(storedBytes), [12, 16, 1024, 2048]);
  });

  it('keeps the first shard’s bytes and zeros the rest', () => {
    const shard = new Uint8Array(100).map((_, i) => i + 1).buffer;
    const stand = rehearsalArtifacts(artifacts, shard);
    const bytes = new Uint8Array(stand.weightData);
    assert.equal(bytes.length, total);
    assert.deepEqual(bytes.subarray(0, 100), new Uint8Array(shard));
    assert.ok(bytes.subarray(100).every((b) => b === 0));
    assert.equal(stand.modelTopology, artifacts.modelTopology);
  });

  it('refuses when a small constant lies beyond the first shard', () => {
    assert.equal(rehearsalArtifacts(artifacts, new ArrayBuffer(20)), null);
    const late = { ...artifacts, weightSpecs: [specs[2], specs[0]] };
    assert.equal(rehearsalArtifacts(late, new ArrayBuffer(1030)), null);
  });
});

describe('workingSize', () => {
  const rules = { minSide: 17, defaultMaxResolution: 512, maxResolutionLimit: 2048 };
  // [height, width, max_resolution] -> [height, width], worked out by hand from
  // sanet/stylizer.py working_size (and checked against it once).
  const cases = [
    [
      [131, 173, 256],
      [131, 173],
    ], // fits: unchanged
    [
      [131, 173, 128],
      [97, 128],
    ], // 131 * 128/173 = 96.92
    [
      [3000, 4000, 512],
      [384, 512],
    ],
    [
      [4000, 3000, 2048],
      [2048, 1536],
    ],
    [
      [1, 1, 512],
      [17, 17],
    ], // scaled up to the minimum side
    [
      [16, 16, 512],
      [17, 17],
    ],
    [
      [1, 400, 512],
      [17, 512],
    ], // up by 17, capped at 512/400 = 1.28, then stretched to 17
    [
      [8, 400, 512],
      [17, 512],
    ],
    [
      [5000, 20, 512],
      [512, 17],
    ],
    [
      [10, 512, 512],
      [17, 512],
    ], // the longest side exactly at the limit: scale 1, the short side still stretched
    [
      [10, 10, 0],
      [17, 17],
    ], // no limit: only the minimum side
    [
      [45, 100, 50],
      [22, 50],
    ], // 22.5 rounds to even, as Python's round() does
  ];
  for (const [[height, width, limit], expected] of cases) {
    it(`${height}x${width} at ${limit} px`, () => {
      const size = workingSize(height, width, limit, rules);
      assert.deepEqual([size.height, size.width], expected);
    });
  }

  it('rounds halves to even like Python', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 4, 2, 3]);
  });
});

describe('requestRules', () => {
  const request = { min_side: 17, default_max_resolution: 512, max_resolution_limit: 2048 };
  it('reads the rules of a metadata.json of this schema', () => {
    assert.deepEqual(requestRules({ schema_version: SCHEMA_VERSION, request }), {
      minSide: 17,
      defaultMaxResolution: 512,
      maxResolutionLimit: 2048,
    });
  });
  it('refuses another schema version or a missing rule, in words', () => {
    assert.throws(
      () => requestRules({ request }),
      /schema version is missing.*convert the model again/,
    );
    assert.throws(
      () => requestRules({ schema_version: SCHEMA_VERSION, request: { ...request, min_side: 0 } }),
      /minSide is invalid/,
    );
  });
});

describe('the page state machine', () => {
  it('follows the listed transitions and refuses the others', () => {
    const seen = [];
    const machine = createMachine((state, previous, event) =>
      seen.push(`${previous}-${event}->${state}`),
    );
    machine.send('described');
    machine.send('loaded');
    machine.send('run');
    machine.send('changed');
    assert.equal(machine.state, State.STALE);
    assert.equal(machine.can('run'), false);
    assert.throws(() => machine.send('run'), /no “run” from “stale”/);
    machine.send('cancel');
    assert.equal(machine.state, State.LOADING);
    assert.deepEqual(seen, [
      'starting-described->loading',
      'loading-loaded->ready',
      'ready-run->running',
      'running-changed->stale',
      'stale-cancel->loading',
    ]);
  });
});

describe('estimateMs', () => {
  it('charges each iteration a fixed time plus time per megapixel of content and style', () => {
    const speed = { fixedMs: 100, msPerMegapixel: 2000 };
    const sizes = [
      { width: 1000, height: 500 },
      { width: 500, height: 500 },
    ]; // 0.75 megapixels
    assert.equal(estimateMs(speed, sizes, 2), 2 * (100 + 1500));
  });
  it("counts a tiled run's content by the pixels its tiles run, margins included", () => {
    const speed = { fixedMs: 100, msPerMegapixel: 2000 };
    const sizes = [
      { width: 1000, height: 500 },
      { width: 500, height: 500 },
    ];
    // Encoder and decoder tiles ran 1.5 M pixels: 0.75 of content plus 0.25 of style.
    assert.equal(estimateMs(speed, sizes, 2, 1_500_000), 2 * (100 + 2000));
    assert.equal(estimateMs(speed, sizes, 1, 1_000_000), estimateMs(speed, sizes, 1));
  });
  it('charges a full-size plan in tiles for their margins', () => {
    const speed = { fixedMs: 0, msPerMegapixel: 1000 };
    const sizes = [
      { width: 4000, height: 3000 },
      { width: 512, height: 512 },
    ];
    const tiled = { encoderMargin: 80, featuresMargin: 48 };
    // 512 px tiles with 80 px margins run 3800 x 5120 pixels through the encoder, with 48 px
    // ones 3480 x 4672 through the decoder: 35,714,560, half of it against 12 M untiled.
    const expected = (35_714_560 / 2 + 512 * 512) / 1000;
    const held = planMs(speed, sizes, 1, { tile: 512, streamed: false }, tiled);
    assert.ok(Math.abs(held - expected) < 1e-6, `${held} vs ${expected}`);
    const untiled = planMs(speed, sizes, 1, { tile: 0, streamed: false }, tiled);
    assert.ok(Math.abs(untiled - 12_262.144) < 1e-6, `${untiled}`);
    const streamed = planMs(speed, sizes, 1, { tile: 512, streamed: true }, tiled);
    assert.ok(streamed > 1.6 * held, 'streamed encodes the content a second time');
  });
  it('words durations', () => {
    assert.deepEqual([400, 45_000, 200_000, 5_400_000].map(formatDuration), [
      '1 s',
      '45 s',
      '3 min',
      '1 h 30 min',
    ]);
  });
});
