// End-to-end tests of the page in Debian's headless Chromium, against the model in MODEL_DIR.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isSmall, storedBytes } from '../src/rehearsal.js';
import { SCHEMA_VERSION } from '../src/working-size.js';
import {
  armFault,
  chooseByKeyboard,
  compareWithSavedModel,
  compareWithTfjsModel,
  config,
  downloadTo,
  imageInfo,
  launchChromium,
  LONG,
  makeInputs,
  openPageWithModel,
  pageReady,
  pngSize,
  ROOT,
  saveWorkingRun,
  startSite,
  tensorCounts,
  waitForRun,
  WEBGPU_ARGS,
} from './helpers.mjs';

// The page's 8-bit result against the SavedModel's float output, in levels of 1/255:
// - rounding to 8 bits alone gives up to 0.5;
// - TF.js (WASM/XNNPACK) and TensorFlow (Eigen) sum in different orders, and float32 rounding
//   differences of ~1e-6 relative, amplified through the network's layers and iterations, can
//   move a value across a rounding boundary: one more level, rarely two.
// A real mismatch (channel order, scaling, resize semantics, a wrong input) costs tens of levels,
// so these bounds still catch it.
const MAX_LEVELS = 3;
const MEAN_LEVELS = 0.5;
// When the content is larger than the resolution, the page scales it with the browser first:
// those cases are compared at the working size, on the very pixels the model was given (the
// untrained test model turns a resampler's few levels into tens).
const LOWER_RESOLUTION = 128;

const CONTROLS = [
  'content-input',
  'style-input',
  'stylize-button',
  'iterations',
  'strength',
  'max-resolution',
  'model-variant',
  'backend',
  'status',
  'result',
  'download',
];

describe('the page in Chromium', { timeout: 300_000 }, () => {
  let site;
  let browser;
  let context;
  let page;
  let inputs;
  const consoleErrors = [];
  const foreignRequests = [];
  const modelRequests = [];

  const testId = (id) => page.locator(`[data-testid="${id}"]`);
  const statusState = () => testId('status').getAttribute('data-state');

  const waitReady = (expect) => pageReady(page, expect);
  // Failed runs seen so far: the page counts them in the status's data-failures.
  let failuresSeen = 0;
  // Results drawn so far by this page (the result canvas counts them in data-run).
  let run = 0;

  /** Waits for the n-th result to be drawn; throws as soon as a new run fails instead. */
  async function waitRun(n) {
    failuresSeen = await waitForRun(page, n, failuresSeen);
  }

  const downloadResult = (name) => downloadTo(page, inputs, name);

  async function assertTensorsAtBaseline() {
    const { live, baseline } = await tensorCounts(page);
    assert.ok(baseline > 0, 'the model holds its weights as tensors');
    assert.equal(live, baseline, 'every tensor of the run was disposed');
  }

  function watch(target) {
    target.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    target.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  }

  before(async () => {
    inputs = await makeInputs();
    site = await startSite();
    browser = await launchChromium();
    context = await browser.newContext({
      acceptDownloads: true,
      permissions: ['clipboard-read', 'clipboard-write'],
      viewport: { width: 1280, height: 900 },
    });
    context.on('request', (request) => {
      const url = request.url();
      if (url.startsWith('blob:') || url.startsWith('data:')) return;
      if (new URL(url).origin !== site.origin) foreignRequests.push(url);
      if (/\/model\/.*\.bin(\?|$)/.test(url)) modelRequests.push(url);
    });
    // Record every status text, to check that each stage is reported.
    await context.addInitScript(() => {
      window.statusLog = [];
      document.addEventListener('DOMContentLoaded', () => {
        const status = document.querySelector('[data-testid="status"]');
        const record = () => window.statusLog.push(status.textContent);
        new MutationObserver(record).observe(status, { childList: true, subtree: true });
      });
    });
    page = await context.newPage();
    watch(page);
    await page.goto(`${site.origin}/`);
  });

  after(async () => {
    await browser?.close();
    site?.server.close();
    if (inputs) await rm(inputs, { recursive: true, force: true });
  });

  it('loads the model with no console error, isolated, and says it is untrained', async () => {
    await waitReady();
    const stages = (await page.evaluate(() => window.statusLog)).join('\n');
    assert.match(stages, /Downloading the model: [\d.]+ (B|kB|MB) of [\d.]+ (B|kB|MB)/);
    assert.match(stages, /Warming up on \w+/);
    assert.ok(modelRequests.length > 0, 'the first visit downloads the weights');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const variants = await testId('model-variant').locator('option').allTextContents();
    assert.deepEqual(
      variants.map((text) => text.split(',')[0]),
      ['fp32', 'float16', 'uint8'],
    );
    for (const text of variants) assert.match(text, /\d+(\.\d)? (B|kB|MB)/, 'sizes are shown');
    const metadata = await (await fetch(`${site.origin}/model/metadata.json`)).json();
    const untrained = Boolean(metadata.weights?.untrained || metadata.weights?.source === 'demo');
    assert.equal(await page.locator('#untrained-banner').isVisible(), untrained);
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreignRequests, []);
  });

  it('stylizes two chosen images like the SavedModel, at the content’s size', async (t) => {
    await testId('model-variant').selectOption('fp32');
    await waitReady('fp32');
    await testId('backend').selectOption('wasm');
    await waitReady('on wasm');
    // Cross-origin isolated, the WASM backend loads its multi-threaded SIMD build, and it runs
    // on at least two threads whenever there are two cores (TF.js alone would give a 2-core
    // machine one), never more than there are cores.
    const active = await page.locator('#backend-active').textContent();
    assert.match(active, /wasm, \d+ threads?, SIMD, multi-threaded build/);
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const threads = Number(active.match(/(\d+) threads?/)[1]);
    assert.ok(
      threads >= Math.min(2, cores) && threads <= cores,
      `${threads} threads on ${cores} cores`,
    );
    await testId('iterations').fill('2');
    await testId('strength').fill('0.8');
    await testId('max-resolution').selectOption('256');
    await testId('content-input').setInputFiles(join(inputs, 'content.png'));
    await testId('style-input').setInputFiles(join(inputs, 'style-a.png'));
    await testId('stylize-button').click();
    await waitRun(++run);
    assert.equal(await statusState(), 'done');
    const stages = (await page.evaluate(() => window.statusLog)).join('\n');
    assert.match(stages, /Stylizing at 173×131 px on wasm/);

    const result = await downloadResult('result-a.png');
    assert.deepEqual(await pngSize(result), { width: 173, height: 131 });
    const report = await compareWithSavedModel({
      content: join(inputs, 'content.png'),
      style: join(inputs, 'style-a.png'),
      result,
      iterations: 2,
      strength: 0.8,
      max_resolution: 256,
    });
    t.diagnostic(`page vs SavedModel: ${JSON.stringify(report)}`);
    assert.deepEqual(report.page_size, report.reference_size);
    assert.ok(report.max_abs <= MAX_LEVELS, `max error ${report.max_abs} levels`);
    assert.ok(report.mean_abs <= MEAN_LEVELS, `mean error ${report.mean_abs} levels`);
    await assertTensorsAtBaseline();
  });

  it('re-stylizes when the style or a control changes, without re-uploading', async (t) => {
    await testId('style-input').setInputFiles(join(inputs, 'style-b.png'));
    await waitRun(++run); // no click: a new style re-runs by itself
    await testId('max-resolution').selectOption(String(LOWER_RESOLUTION));
    await waitRun(++run);
    assert.deepEqual(await pngSize(await downloadResult('result-b.png')), {
      width: 173,
      height: 131,
    });
    const working = await saveWorkingRun(page, inputs);
    assert.deepEqual(await pngSize(working.content), { width: 128, height: 97 });
    const report = await compareWithSavedModel({
      ...working,
      iterations: 2,
      strength: 0.8,
      max_resolution: 0,
    });
    t.diagnostic(`page vs SavedModel at the working size: ${JSON.stringify(report)}`);
    assert.ok(report.max_abs <= MAX_LEVELS, `max error ${report.max_abs} levels`);
    assert.ok(report.mean_abs <= MEAN_LEVELS, `mean error ${report.mean_abs} levels`);
    assert.match(await page.locator('#result-meta').textContent(), /computed at 128×97;/);
    await assertTensorsAtBaseline();
  });

  it('re-runs a control change from the encodings it kept, like the SavedModel', async (t) => {
    const reused = page.locator('#diagnostics [data-key="Encodings re-used"] dd');
    // The resolution changed last: the content was resized again; the style, smaller than
    // either resolution, was not.
    assert.equal(await reused.textContent(), 'style');
    await testId('strength').fill('0.5');
    await waitRun(++run); // only the strength changed: the content's and style's are kept
    assert.equal(await reused.textContent(), 'content, style');
    await testId('style-input').setInputFiles(join(inputs, 'style-a.png'));
    await waitRun(++run); // a new style: the content's alone
    assert.equal(await reused.textContent(), 'content');
    const report = await compareWithSavedModel({
      ...(await saveWorkingRun(page, inputs)),
      iterations: 2,
      strength: 0.5,
      max_resolution: 0,
    });
    t.diagnostic(`page vs SavedModel, encodings re-used: ${JSON.stringify(report)}`);
    assert.ok(report.max_abs <= MAX_LEVELS, `max error ${report.max_abs} levels`);
    assert.ok(report.mean_abs <= MEAN_LEVELS, `mean error ${report.mean_abs} levels`);
    await testId('strength').fill('0.8');
    await waitRun(++run);
    await assertTensorsAtBaseline();
  });

  it('switches to the uint8 variant, which downloads less and runs as converted', async (t) => {
    const metadata = await (await fetch(`${site.origin}/model/metadata.json`)).json();
    const uint8 = metadata.variants.find((v) => v.name === 'uint8');
    const fp32 = metadata.variants.find((v) => v.name === 'fp32');
    assert.ok(uint8.bytes < fp32.bytes, 'the quantized variant is smaller');
    await testId('model-variant').selectOption('uint8');
    await waitRun(++run); // the model changed: the page re-stylizes by itself
    assert.match(await page.locator('#result-meta').textContent(), /uint8 model on wasm/);
    // 8-bit weights change the output by design (the converter records by how much), so the
    // page is held to the variant itself: the same files run by TF.js in Node.
    const report = await compareWithTfjsModel(join(config.modelDir, dirname(uint8.path)), {
      ...(await saveWorkingRun(page, inputs)),
      iterations: 2,
      strength: 0.8,
      max_resolution: 0,
    });
    t.diagnostic(`uint8 page vs uint8 in Node: ${JSON.stringify(report)}`);
    assert.deepEqual(report.page_size, report.reference_size);
    assert.ok(report.max_abs <= MAX_LEVELS, `max error ${report.max_abs} levels`);
    assert.ok(report.mean_abs <= MEAN_LEVELS, `mean error ${report.mean_abs} levels`);
    await testId('model-variant').selectOption('fp32');
    await waitRun(++run);
    assert.match(await page.locator('#result-meta').textContent(), /fp32 model on wasm/);
  });

  it('explains a non-image upload in plain words and keeps working', async () => {
    await testId('content-input').setInputFiles(join(inputs, 'notes.txt'));
    await page.waitForSelector('[data-testid="error"]:not([hidden])');
    assert.match(await testId('error').textContent(), /“notes\.txt” is not an image/);
    await testId('style-input').setInputFiles(join(inputs, 'broken.png'));
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="error"]').textContent.includes('broken.png'),
    );
    assert.match(await testId('error').textContent(), /not an image this browser can read/);
    await testId('content-input').setInputFiles(join(inputs, 'huge.png'));
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="error"]').textContent.includes('huge.png'),
    );
    assert.match(
      await testId('error').textContent(),
      /12000×12000 pixels, too large to open safely/,
    );
    // The previous images are kept; the page still stylizes.
    await testId('stylize-button').click();
    await waitRun(++run);
    assert.equal(await testId('error').isHidden(), true, 'a successful run clears the error');
    await assertTensorsAtBaseline();
  });

  it('scales a large photo down before processing and downloads it at its own size', async () => {
    await testId('content-input').setInputFiles(join(inputs, 'large.png'));
    await waitRun(++run);
    // One size in every message: the image's own, and the one the model computed at.
    assert.equal(await page.locator('#content-meta').textContent(), 'large.png: 3000×2000 px');
    assert.match(
      await page.locator('#result-meta').textContent(),
      /^3000×2000 px, computed at 128×85;/,
    );
    assert.equal(await page.locator('#notices').textContent(), '');
    assert.deepEqual(await pngSize(await downloadResult('result-large.png')), {
      width: 3000,
      height: 2000,
    });
    await assertTensorsAtBaseline();
  });

  it('retries at a lower resolution after running out of memory, and on another backend', async () => {
    await testId('content-input').setInputFiles(join(inputs, 'content.png'));
    await waitRun(++run);
    await testId('max-resolution').selectOption('256');
    await waitRun(++run);
    await armFault(page, { fault: 'oom' });
    await testId('stylize-button').click();
    await waitRun(++run);
    assert.match(
      await page.locator('#notices').textContent(),
      /Out of memory at 173 px on wasm; retried at 128 px/,
    );
    assert.match(
      await page.locator('#result-meta').textContent(),
      /lowered to 128 px \(out of memory\)/,
    );
    // The same request again is refused up front, with what fits instead.
    await testId('stylize-button').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="status"]').dataset.state === 'error',
    );
    assert.match(
      await testId('error').textContent(),
      /^At 256 px with 2 iterations, this device ran out of memory on wasm at 256 px earlier\. Choose 128 px or less, or fewer iterations\.$/,
    );
    await testId('max-resolution').selectOption('128');
    await testId('stylize-button').click();
    await waitRun(++run);
    await armFault(page, { fault: 'context-lost' });
    await testId('stylize-button').click();
    await waitRun(++run);
    assert.match(
      await page.locator('#notices').textContent(),
      /wasm backend lost its GPU context; switched to cpu/,
    );
    assert.match(await page.locator('#result-meta').textContent(), /on cpu/);
    await assertTensorsAtBaseline();
  });

  it('cancels a run, then reloads the model in a fresh worker, memory back to the model’s own', async () => {
    await armFault(page, { fault: 'hang' }); // the next run never ends by itself
    await testId('stylize-button').click();
    await page.waitForFunction(() => document.body.dataset.state === 'running');
    assert.equal(await page.locator('#notices').textContent(), '', 'earlier runs’ notices go');
    assert.equal(await testId('stylize-button').isDisabled(), true, 'no second run queued');
    assert.equal(await testId('cancel-button').isVisible(), true);
    await testId('cancel-button').click();
    await waitReady('read from the browser cache');
    assert.equal(await testId('cancel-button').isHidden(), true);
    await assertTensorsAtBaseline();
    await testId('stylize-button').click();
    await waitRun(++run);
    await assertTensorsAtBaseline();
  });

  it('estimates the time left from the measured speed, and refuses what would take too long', async () => {
    // 120 s per megapixel and run (60 per iteration at 2 iterations): a slow device.
    await armFault(page, { slowdown: 120_000 });
    await testId('style-input').setInputFiles(join(inputs, 'style-a.png'));
    await waitRun(++run); // about 4 s: the page learns the speed
    await testId('style-input').setInputFiles(join(inputs, 'style-b.png'));
    await page.waitForFunction(
      () => / left$/.test(document.querySelector('[data-testid="status"]').textContent),
      null,
      { timeout: LONG },
    );
    await waitRun(++run);
    await testId('content-input').setInputFiles(join(inputs, 'large.png'));
    await waitRun(++run);
    // That photo at 2048 px, 10 iterations: about half an hour at that speed.
    await page.evaluate(() => {
      const iterations = document.querySelector('[data-testid="iterations"]');
      const resolution = document.querySelector('[data-testid="max-resolution"]');
      iterations.value = '10';
      resolution.value = '2048';
      for (const control of [iterations, resolution]) {
        control.dispatchEvent(new Event('change', { bubbles: true }));
      }
    });
    await page.waitForFunction(
      () => document.querySelector('[data-testid="status"]').dataset.state === 'error',
    );
    assert.match(await testId('status').textContent(), /Not started/);
    assert.match(
      await testId('error').textContent(),
      /^At 2048 px with 10 iterations, this device would need about \d+ (min|h)\b.* Choose \d+ px or less, or fewer iterations\.$/,
    );
    assert.equal(await testId('result').isHidden(), true, 'no result of other inputs');
    await armFault(page, { slowdown: 0 });
    await testId('iterations').fill('2');
    await testId('iterations').press('Tab');
    await testId('max-resolution').selectOption('256');
    await testId('content-input').setInputFiles(join(inputs, 'content.png'));
    await testId('stylize-button').click();
    await waitRun(++run);
  });

  it('computes images smaller than the model’s minimum at that minimum, and drops stale results', async () => {
    for (const [file, width, height, computed] of [
      ['tiny-1x1.png', 1, 1, '17×17'],
      ['thin-8x400.png', 8, 400, '17×256'],
    ]) {
      await testId('content-input').setInputFiles(join(inputs, file));
      await waitRun(++run);
      assert.match(
        await page.locator('#result-meta').textContent(),
        new RegExp(`^${width}×${height} px, computed at ${computed};`),
      );
      assert.deepEqual(await pngSize(await downloadResult(`result-${file}`)), { width, height });
    }
    // New inputs take the old result off the screen at once, even before their own run ends.
    await armFault(page, { fault: 'hang' });
    await testId('content-input').setInputFiles(join(inputs, 'content.png'));
    await page.waitForFunction(() => document.body.dataset.state === 'running');
    assert.equal(await testId('result').isHidden(), true);
    assert.equal(await testId('download').isDisabled(), true);
    assert.equal(await page.locator('#result-meta').textContent(), '');
    await testId('cancel-button').click();
    await waitReady();
    await testId('stylize-button').click();
    await waitRun(++run);
  });

  it('shows the whole image in each panel, and the result at full size beside the content', async () => {
    await testId('max-resolution').selectOption('512'); // results larger than their frame
    await waitRun(++run);
    for (const [file, width, height] of [
      ['square.png', 600, 600],
      ['sliver-20x5000.png', 20, 5000],
    ]) {
      await testId('content-input').setInputFiles(join(inputs, file));
      await waitRun(++run);
      for (const canvas of [page.locator('#content-preview'), testId('result')]) {
        const shown = await canvas.evaluate((element) => {
          const frame = element.parentElement.getBoundingClientRect();
          const box = element.getBoundingClientRect();
          return {
            inside:
              box.left >= frame.left - 1 &&
              box.right <= frame.right + 1 &&
              box.top >= frame.top - 1 &&
              box.bottom <= frame.bottom + 1,
            fit: getComputedStyle(element).objectFit,
          };
        });
        assert.deepEqual(shown, { inside: true, fit: 'contain' }, `${file} is not cropped`);
      }
      await testId('view').click();
      await page.locator('#viewer').waitFor({ state: 'visible' });
      const sizes = await page.evaluate(() =>
        ['viewer-before', 'viewer-after'].map((id) => {
          const canvas = document.getElementById(id);
          return [canvas.width, canvas.height];
        }),
      );
      assert.deepEqual(sizes, [
        [width, height],
        [width, height],
      ]);
      await page.locator('#compare').fill('50');
      const clip = await page
        .locator('#viewer-after')
        .evaluate((c) => getComputedStyle(c).clipPath);
      assert.match(clip, /inset\(0(px)? 0(px)? 0(px)? 50%\)/, 'the left half shows the content');
      await page.locator('#viewer-close').click();
    }
    await testId('max-resolution').selectOption('256');
    await waitRun(++run);
    await testId('content-input').setInputFiles(join(inputs, 'content.png'));
    await waitRun(++run);
  });

  it('keeps messages true to the current state', async () => {
    // An unreadable file is refused, and the images in place keep their result.
    await testId('style-input').setInputFiles(join(inputs, 'broken.png'));
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="error"]').textContent.includes('broken.png'),
    );
    assert.equal(await statusState(), 'done');
    assert.equal(await testId('result').isVisible(), true);
    // SVG is neither offered nor silently failed.
    assert.doesNotMatch(await testId('content-input').getAttribute('accept'), /svg/);
    await testId('content-input').setInputFiles(join(inputs, 'drawing.svg'));
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="error"]').textContent.includes('drawing.svg'),
    );
    assert.match(await testId('error').textContent(), /vector drawing \(SVG\)/);
    // An iteration count beyond the limit shows the count that runs, as does the caption.
    await testId('iterations').fill('99');
    await testId('iterations').press('Tab');
    assert.equal(await testId('iterations').inputValue(), '10');
    await waitRun(++run);
    assert.match(
      await page.locator('#result-meta').textContent(),
      /; 10 iterations, strength 0\.80;/,
    );
    await testId('iterations').fill('2');
    await testId('iterations').press('Tab');
    await waitRun(++run);
    // A backend's failure notice goes when another backend is chosen.
    await testId('backend').selectOption('webgpu'); // not enabled in this browser
    await waitRun(++run);
    assert.match(
      await page.locator('#notices').textContent(),
      /The webgpu backend failed here; using \w+ instead/,
    );
    await testId('backend').selectOption('wasm');
    await waitRun(++run);
    assert.equal(await page.locator('#notices').textContent(), '');
  });

  it('exports JPEG, WebP and PNG with the content’s transparency, and copies to the clipboard', async () => {
    await testId('content-input').setInputFiles(join(inputs, 'alpha.png'));
    await waitRun(++run);
    const png = await imageInfo(await downloadResult('alpha-result.png'));
    assert.deepEqual([png.format, png.size, png.mode], ['PNG', [120, 90], 'RGBA']);
    assert.ok(Math.abs(png.transparent - 0.5) < 0.02, `${png.transparent} transparent`);
    await testId('export-format').selectOption('image/webp');
    const webp = await imageInfo(await downloadResult('alpha-result.webp'));
    assert.deepEqual([webp.format, webp.size], ['WEBP', [120, 90]]);
    assert.ok(Math.abs(webp.transparent - 0.5) < 0.02, `${webp.transparent} transparent`);
    await testId('export-format').selectOption('image/jpeg');
    const jpeg = await imageInfo(await downloadResult('alpha-result.jpg'));
    assert.deepEqual([jpeg.format, jpeg.size, jpeg.transparent], ['JPEG', [120, 90], 0]);
    await testId('copy').click();
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="status"]').textContent.includes('Copied'),
    );
    const copied = await page.evaluate(async () => {
      const [item] = await navigator.clipboard.read();
      const bitmap = await createImageBitmap(await item.getType('image/png'));
      return [item.types, bitmap.width, bitmap.height];
    });
    assert.deepEqual(copied, [['image/png'], 120, 90]);
    await testId('content-input').setInputFiles(join(inputs, 'content.png'));
    await waitRun(++run);
  });

  it('takes images by drag and drop and by paste', async () => {
    const moved = (slot) => page.locator(`#${slot}-meta`).textContent();
    await page.evaluate(async () => {
      const blob = await (await fetch('samples/content-chelsea.jpg')).blob();
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], 'dropped-cat.jpg', { type: 'image/jpeg' }));
      const zone = document.getElementById('content-drop');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, cancelable: true }));
    });
    await waitRun(++run);
    assert.match(await moved('content'), /dropped-cat\.jpg: 451×300/);
    await page.evaluate(async () => {
      const blob = await (await fetch('samples/style-mosaic.jpg')).blob();
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], 'pasted.jpg', { type: 'image/jpeg' }));
      document.getElementById('style-drop').focus();
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer }));
    });
    await waitRun(++run);
    assert.match(await moved('style'), /pasted\.jpg: 512×512/);
  });

  it('uses the sample gallery and the webcam', async () => {
    await page.locator('.gallery[data-slot="style"] button').first().click();
    await waitRun(++run);
    assert.match(await page.locator('#style-meta').textContent(), /waves\.jpg: 512×512/);
    await page.locator('#webcam-button').click();
    await page.waitForFunction(() => document.getElementById('webcam-video').videoWidth > 0);
    await page.locator('#webcam-shoot').click();
    await waitRun(++run);
    assert.match(await page.locator('#content-meta').textContent(), /webcam\.png/);
  });

  it('works offline on a second visit, without downloading the model again', async () => {
    const before = modelRequests.length;
    await page.reload();
    failuresSeen = 0;
    await waitReady();
    assert.equal(modelRequests.length, before, 'weights came from the browser cache');
    assert.match(await testId('status').textContent(), /read from the browser cache/);
    // The settings of the last visit are back.
    const settings = {};
    for (const id of ['iterations', 'strength', 'max-resolution', 'model-variant', 'backend']) {
      settings[id] = await testId(id).inputValue();
    }
    settings.format = await testId('export-format').inputValue();
    assert.deepEqual(settings, {
      iterations: '2',
      strength: '0.8',
      'max-resolution': '256',
      'model-variant': 'fp32',
      backend: 'wasm',
      format: 'image/jpeg',
    });
    // The float16 variant is not kept for offline use any more.
    await page.evaluate(async () => {
      for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const request of await cache.keys()) {
          if (request.url.includes('/model/float16/')) await cache.delete(request);
        }
      }
    });
    await context.setOffline(true);
    try {
      await page.reload();
      failuresSeen = 0; // a new page counts from zero
      run = 0;
      await waitReady();
      await page.locator('.gallery[data-slot="content"] button').nth(1).click();
      await page.locator('.gallery[data-slot="style"] button').nth(2).click();
      await testId('stylize-button').click();
      await waitRun(++run);
      // Offline, a variant that is not cached cannot load: the working one stays in use.
      await testId('model-variant').selectOption('float16');
      await page.waitForFunction(() =>
        document.querySelector('[data-testid="error"]').textContent.includes('float16'),
      );
      assert.match(
        await testId('error').textContent(),
        /^The float16 model could not be loaded \(.*\); still using fp32\.$/,
      );
      assert.equal(await testId('model-variant').inputValue(), 'fp32');
      assert.equal(await statusState(), 'ready');
      await testId('stylize-button').click();
      await waitRun(++run);
      assert.match(await page.locator('#result-meta').textContent(), /fp32 model on wasm$/);
    } finally {
      await context.setOffline(false);
    }
    await assertTensorsAtBaseline();
  });

  it('is usable with labels and the keyboard', async () => {
    for (const id of CONTROLS.filter((c) => !['status', 'result'].includes(c))) {
      const named = await testId(id).evaluate(
        (el) =>
          (el.labels?.length ?? 0) > 0 ||
          el.hasAttribute('aria-label') ||
          el.textContent.trim() !== '',
      );
      assert.ok(named, `${id} has a label`);
    }
    await testId('strength').fill('1');
    await testId('strength').focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await testId('strength').inputValue(), '0.95');
    const chooser = await chooseByKeyboard(page, '#style-drop');
    assert.equal(chooser.isMultiple(), false);
  });

  /** Options whose text does not fit their menu's width (beside the arrow). */
  const cutLabels = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('select')].flatMap((select) => {
        const style = getComputedStyle(select);
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = style.font;
        const arrow = 24;
        const room =
          select.clientWidth -
          parseFloat(style.paddingLeft) -
          parseFloat(style.paddingRight) -
          arrow;
        return [...select.options]
          .filter((option) => ctx.measureText(option.textContent).width > room)
          .map((option) => `${select.id}: ${option.textContent}`);
      }),
    );

  it('shows every control at phone width (screenshots in build/screenshots/)', async () => {
    // The strength changed above: wait for the result of the settings on screen.
    await page.waitForFunction(
      () =>
        document.body.dataset.state === 'ready' &&
        !document.querySelector('[data-testid="result"]').hidden,
      null,
      { timeout: LONG },
    );
    await mkdir(config.screenshots, { recursive: true });
    await page.screenshot({ path: join(config.screenshots, 'desktop.png'), fullPage: true });
    assert.deepEqual(await cutLabels(), [], 'menu labels fit at desktop width');
    await page.setViewportSize({ width: 375, height: 812 });
    await page.screenshot({ path: join(config.screenshots, 'phone.png'), fullPage: true });
    assert.deepEqual(await cutLabels(), [], 'menu labels fit at phone width');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `no sideways scrolling (page is ${width} px wide)`);
    for (const id of CONTROLS) {
      // File inputs are visually hidden behind their labels, which must be on screen.
      const visible = id.endsWith('-input')
        ? page.locator(`label[for="${id.replace('-input', '')}-input"]`)
        : testId(id);
      assert.ok(await visible.isVisible(), `${id} is visible`);
      const box = await visible.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 375, `${id} fits the width`);
    }
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreignRequests, []);
  });
});

describe('the page on a GPU backend', { timeout: 600_000 }, () => {
  let opened;
  let page;
  let inputs;

  before(async () => {
    // The test model in four shards, as a full-size model arrives, with the small constants
    // first as the converter stores them: the page compiles the GPU shaders from the first
    // shard while the others download.
    opened = await openPageWithModel(async (modelDir) => {
      const model = JSON.parse(await readFile(join(config.modelDir, 'model.json'), 'utf8'));
      const [group] = model.weightsManifest;
      const data = Buffer.concat(
        await Promise.all(group.paths.map((path) => readFile(join(config.modelDir, path)))),
      );
      let offset = 0;
      const pieces = group.weights.map((spec) => {
        const bytes = data.subarray(offset, offset + storedBytes(spec));
        offset += storedBytes(spec);
        return { spec, bytes };
      });
      const ordered = [
        ...pieces.filter(({ spec }) => isSmall(spec)),
        ...pieces.filter(({ spec }) => !isSmall(spec)),
      ];
      group.weights = ordered.map(({ spec }) => spec);
      const packed = Buffer.concat(ordered.map(({ bytes }) => bytes));
      const step = Math.ceil(packed.length / 4);
      group.paths = [0, 1, 2, 3].map((i) => `shard${i}.bin`);
      await Promise.all(
        group.paths.map((path, i) =>
          writeFile(join(modelDir, path), packed.subarray(i * step, (i + 1) * step)),
        ),
      );
      await writeFile(join(modelDir, 'model.json'), JSON.stringify(model));
      const metadata = JSON.parse(await readFile(join(config.modelDir, 'metadata.json'), 'utf8'));
      metadata.variants = [{ ...metadata.variants.find((v) => v.name === 'fp32') }];
      await writeFile(join(modelDir, 'metadata.json'), JSON.stringify(metadata));
    }, WEBGPU_ARGS);
    ({ page, inputs } = opened);
    await page.locator('[data-testid="content-input"]').setInputFiles(join(inputs, 'content.png'));
    await page.locator('[data-testid="style-input"]').setInputFiles(join(inputs, 'style-a.png'));
    await page.locator('[data-testid="max-resolution"]').selectOption('256');
  });

  after(() => opened?.close());

  /** Waits until the page shows a result computed on `backend` (or fails on an error). */
  async function waitResultOn(backend) {
    await page.waitForFunction(
      (name) =>
        document.querySelector('[data-testid="error"]').hidden === false ||
        (document.body.dataset.state === 'ready' &&
          document.getElementById('result-meta').textContent.endsWith(`model on ${name}`)),
      backend,
      { timeout: LONG * 3 },
    );
    assert.equal(await page.locator('[data-testid="error"]').textContent(), '', 'no error');
  }

  /** The page's result (at 256 px: the content's own size, no resize) against the SavedModel. */
  async function assertLikeSavedModel(t, backend) {
    const download = page.waitForEvent('download');
    await page.locator('[data-testid="download"]').click();
    const result = join(inputs, `result-${backend}.png`);
    await (await download).saveAs(result);
    const report = await compareWithSavedModel({
      content: join(inputs, 'content.png'),
      style: join(inputs, 'style-a.png'),
      result,
      iterations: 1,
      strength: 1,
      max_resolution: 256,
    });
    t.diagnostic(`${backend} page vs SavedModel: ${JSON.stringify(report)}`);
    assert.ok(report.max_abs <= MAX_LEVELS, `max error ${report.max_abs} levels`);
    assert.ok(report.mean_abs <= MEAN_LEVELS, `mean error ${report.mean_abs} levels`);
  }

  it('compiles the shaders while the weights download, then stylizes on WebGPU like the SavedModel', async (t) => {
    // Auto tries WebGPU first: it must work, not fall back.
    await page.waitForFunction(() => document.body.dataset.state !== 'loading', null, {
      timeout: LONG * 3,
    });
    assert.match(await page.locator('[data-testid="status"]').textContent(), /on webgpu\.$/);
    const tried = await page.locator('#diagnostics [data-key="Backends tried"] dd').textContent();
    assert.doesNotMatch(tried, /webgpu:/, 'WebGPU did not fail');
    const row = page.locator('#diagnostics [data-key="Shaders compiled during the download"] dd');
    assert.match(await row.textContent(), /^yes, \d+ ms$/);
    const warmUp = page.locator('#diagnostics [data-key="Warm-up"] dd');
    t.diagnostic(
      `rehearsal: ${await row.textContent()}; warm-up after it: ${await warmUp.textContent()}`,
    );
    await page.locator('[data-testid="stylize-button"]').click();
    await waitResultOn('webgpu');
    await assertLikeSavedModel(t, 'webgpu');
    assert.deepEqual(opened.errors, []);
  });

  it('stylizes on WebGL like the SavedModel', async (t) => {
    // After a first result, another backend stylizes again by itself.
    await page.locator('[data-testid="backend"]').selectOption('webgl');
    await waitResultOn('webgl');
    assert.equal(await page.locator('#notices').textContent(), '', 'no fallback notice');
    await assertLikeSavedModel(t, 'webgl');
    assert.deepEqual(opened.errors, []);
  });
});

describe('the page when the model cannot be loaded', { timeout: 120_000 }, () => {
  let opened;
  let page;
  let inputs;

  before(async () => {
    // metadata.json that points at model files which are not there
    opened = await openPageWithModel(async (modelDir) => {
      const metadata = {
        schema_version: SCHEMA_VERSION,
        request: { min_side: 17, default_max_resolution: 512, max_resolution_limit: 2048 },
        memory: {
          bytes_per_float: 4,
          attention_copies: 3,
          activation_copies: 3,
          activation_channels: 64,
        },
        weights: { source: 'release', untrained: false },
        variants: [{ name: 'fp32', path: 'model.json', bytes: 1000 }],
      };
      await writeFile(join(modelDir, 'metadata.json'), JSON.stringify(metadata));
    });
    ({ page, inputs } = opened);
  });

  after(() => opened?.close());

  it('says so in plain words and keeps the rest of the page usable', async () => {
    const error = page.locator('[data-testid="error"]');
    await error.waitFor({ state: 'visible', timeout: LONG });
    assert.match(
      await error.textContent(),
      /The fp32 model failed to load: .*could not be downloaded/,
    );
    assert.equal(await page.locator('[data-testid="status"]').getAttribute('data-state'), 'error');
    assert.equal(await page.locator('#untrained-banner').isVisible(), false, 'release weights');
    await page.locator('[data-testid="content-input"]').setInputFiles(join(inputs, 'content.png'));
    await page.waitForFunction(() =>
      document.getElementById('content-meta').textContent.includes('content.png: 173×131'),
    );
    assert.equal(await page.locator('[data-testid="stylize-button"]').isDisabled(), true);
    assert.deepEqual(opened.errors, []);
  });
});

describe('the page under a folder of a site', { timeout: 120_000 }, () => {
  let site;
  let browser;
  let root;

  before(async () => {
    // A site with the app at /app/, as `make docs` builds it (without a model here).
    root = await mkdtemp(join(tmpdir(), 'sanet-site-'));
    await symlink(resolve(ROOT, 'web'), join(root, 'app'));
    site = await startSite(join(root, 'no-model'), root);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    site?.server.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('redirects /app to /app/, where the page starts', async () => {
    const page = await browser.newPage();
    await page.goto(`${site.origin}/app`);
    assert.equal(new URL(page.url()).pathname, '/app/');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="status"]').dataset.state === 'error',
      null,
      { timeout: LONG },
    );
    assert.match(await page.locator('[data-testid="error"]').textContent(), /make convert/);
  });
});
