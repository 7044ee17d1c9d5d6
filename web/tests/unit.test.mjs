// Fast checks of the page's pure helpers and of the static server's headers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer } from '../serve.mjs';
import { classifyError } from '../src/errors.js';
import { fitWithin } from '../src/images.js';
import { signatureAdapter } from '../src/signature.js';

const entry = (name, dtype = 'DT_FLOAT') => ({ name, dtype });

describe('signatureAdapter', () => {
  it('finds the logical names behind the converter’s keys and tensor names', () => {
    const adapter = signatureAdapter({
      inputs: {
        strength: entry('strength:0'),
        'content:0': entry('content:0'),
        'style:0': entry('style:0'),
        serving_default_iterations: entry('serving_default_iterations:0', 'DT_INT32'),
        'max_resolution:0': entry('max_resolution:0', 'DT_INT32'),
      },
      outputs: { result: entry('Identity:0') },
    });
    assert.deepEqual(adapter.inputs, {
      content: 'content:0',
      style: 'style:0',
      iterations: 'serving_default_iterations',
      max_resolution: 'max_resolution:0',
      strength: 'strength',
    });
    assert.equal(adapter.output, 'result');
    const feed = adapter.feed({
      content: 1,
      style: 2,
      iterations: 3,
      max_resolution: 4,
      strength: 5,
    });
    assert.deepEqual(feed, {
      'content:0': 1,
      'style:0': 2,
      serving_default_iterations: 3,
      'max_resolution:0': 4,
      strength: 5,
    });
  });

  it('takes the only output whatever its name, and rejects a signature that lacks an input', () => {
    const inputs = Object.fromEntries(
      ['content', 'style', 'iterations', 'max_resolution'].map((n) => [n, entry(`${n}:0`)]),
    );
    assert.throws(
      () => signatureAdapter({ inputs, outputs: { output_0: entry('Identity:0') } }),
      /lacks strength/,
    );
    inputs.strength = entry('strength:0');
    assert.equal(
      signatureAdapter({ inputs, outputs: { output_0: entry('x:0') } }).output,
      'output_0',
    );
    assert.throws(() => signatureAdapter({}), /no signature/);
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
