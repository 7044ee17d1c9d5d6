// Full size: a 4000x3000 photo stylized at its own size in tiles (the signature's `tile` input)
// and in pieces (its `measure` and `content_moments`), with progress per tile, a working Cancel,
// the PNG at 4000x3000, and what cannot fit refused in words before any work (issue 11).
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { watchRenderer } from '../process-memory.mjs';
import { fullSizePlan, memoryBudgetMb, memoryRule, tiledRule } from '../src/memory.js';
import { boxSize, pieceMargins, planPieces } from '../src/pieces.js';
import {
  compareWithSavedModel,
  config,
  downloadTo,
  launchChromium,
  makeInputs,
  pageReady,
  pngSize,
  pngText,
  python,
  startSite,
  tensorCounts,
} from './helpers.mjs';

// As page.test.mjs: the page's 8-bit result against the SavedModel's float output, in levels.
const MAX_LEVELS = 3;
const MEAN_LEVELS = 0.5;
// Two passes: the second stylizes the first's output, rounding and all, so its tail over 12
// million pixels is wider (6.0 levels measured, mean 0.27); a real mismatch costs tens.
const MAX_LEVELS_TWO_PASSES = 8;
const PHOTO = { width: 4000, height: 3000 };
const STYLE = { width: 120, height: 90 }; // reference.py's style-a.png
const RUN_MS = 150_000;
// A 6 GB device, so a 3 GB budget on wasm: beside the page's own part (memory.js pageOwnMb),
// the small test model's 12 MP then runs in one call, in 6 tiles of 1552 px (with 8 GB or
// more, a 4 GiB budget on wasm, in fewer and larger ones).
const DEVICE_GB = 6;

/**
 * A smooth 4000x3000 photo, a 30000x400 strip, and the photo as a JPEG cut in half and with
 * damaged bytes, written by numpy and PIL (not the page).
 */
async function writePhotos(dir) {
  const script = `
import sys, numpy as np
from PIL import Image
out = sys.argv[1]
for name, (w, h) in {"photo.png": (4000, 3000), "strip.png": (30000, 400)}.items():
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w], np.float32)[:, None, None]
    rgb = np.stack([0.5 + 0.4 * np.sin(9 * x + 4 * y), 0.5 + 0.4 * np.cos(13 * y), x * (1 - y)], -1)
    Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(f"{out}/{name}")
Image.open(f"{out}/photo.png").save(f"{out}/photo.jpg", quality=90)
jpeg = bytearray(open(f"{out}/photo.jpg", "rb").read())
open(f"{out}/cut.jpg", "wb").write(jpeg[: len(jpeg) // 2])
jpeg[2000::997] = bytes(b ^ 0x5A for b in jpeg[2000::997])
open(f"{out}/damaged.jpg", "wb").write(jpeg)
`;
  await python(['-c', script, dir]);
}

/** Records every status text (window.statusLog), to follow the progress per tile. */
const recordStatus = () => {
  window.statusLog = [];
  document.addEventListener('DOMContentLoaded', () => {
    const status = document.querySelector('[data-testid="status"]');
    const record = () => window.statusLog.push(status.textContent);
    new MutationObserver(record).observe(status, { childList: true, subtree: true });
  });
};

/**
 * The "tile n of N" reports in the status texts since `from`, as [n, N] pairs; the status shows
 * a report until the next one (the clock beside it ticks), so repeats are one report.
 */
async function tileReports(page, from = 0) {
  const log = await page.evaluate(() => window.statusLog);
  return log
    .slice(from)
    .map((text) => text.match(/(encoding|decoding), tile (\d+) of (\d+)/))
    .filter(Boolean)
    .map(([, , n, total]) => [Number(n), Number(total)])
    .filter(([n], i, all) => i === 0 || n !== all[i - 1][0]);
}

/**
 * Compares the downloaded result of the photo with style-a with the SavedModel's untiled run of
 * the same request, in levels of 1/255, and reports it as `label`.
 */
async function matchesSavedModel(t, download, label, iterations, maxLevels) {
  const inputs = dirname(download);
  const report = await compareWithSavedModel({
    content: join(inputs, 'photo.png'),
    style: join(inputs, 'style-a.png'),
    result: download,
    iterations,
    strength: 1,
    max_resolution: 0,
  });
  t.diagnostic(`${label}: ${JSON.stringify(report)}`);
  assert.deepEqual(report.page_size, report.reference_size);
  assert.ok(report.max_abs <= maxLevels, `max error ${report.max_abs} levels`);
  assert.ok(report.mean_abs <= MEAN_LEVELS, `mean error ${report.mean_abs} levels`);
}

/** The status showed "tile n of N" for n from 1 to N = `expected`, in order, since `logged`. */
async function reportsEachOf(page, logged, expected, message) {
  const wanted = Array.from({ length: expected }, (_, i) => [i + 1, expected]);
  assert.deepEqual(await tileReports(page, logged), wanted, message);
}

/** The page's plan (memory.js fullSizePlan) for the photo and style-a on `budgetMb`. */
const planAt = (metadata, budgetMb, passes = 1) =>
  fullSizePlan(
    memoryRule(metadata),
    tiledRule(metadata),
    PHOTO,
    STYLE,
    false,
    null,
    budgetMb,
    passes,
  );

/**
 * The page's heap within its plan's estimate, and its whole renderer (the tab: `tabMb`, its
 * peak from choosing the photo to the PNG's download) within the plan's estimate of the tab.
 */
async function withinPlan(t, page, plan, tabMb, what) {
  const [heap, heapMb] = await wasmHeap(page);
  t.diagnostic(
    `${what}: wasm heap ${heap} (estimate ${plan.heapMb} MB); the tab's renderer at most ` +
      `${tabMb} MB (estimate ${plan.neededMb} MB)`,
  );
  assert.ok(heapMb <= plan.heapMb, `the heap (${heapMb} MB) within its estimate`);
  assert.ok(tabMb <= plan.neededMb, `the tab (${tabMb} MB) within its estimate`);
}

/** The diagnostics' WebAssembly heap: as shown (decimal MB), and in MiB. */
async function wasmHeap(page) {
  const heap = await page.locator('#diagnostics [data-key="WebAssembly heap"] dd').textContent();
  return [heap, (Number(heap.match(/^([\d.]+) MB$/)[1]) * 1e6) / 2 ** 20];
}

async function openPage(browser, origin, deviceMemoryGb = null) {
  const context = await browser.newContext({ acceptDownloads: true });
  await context.addInitScript(recordStatus);
  if (deviceMemoryGb) {
    await context.addInitScript((gb) => {
      Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => gb });
    }, deviceMemoryGb);
  }
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await pageReady(page);
  await page.locator('[data-testid="backend"]').selectOption('wasm');
  await pageReady(page, 'on wasm');
  // fp32, as the SavedModel it is compared with.
  await page.locator('[data-testid="model-variant"]').selectOption('fp32');
  await pageReady(page, 'fp32');
  return page;
}

/**
 * Stylizes the photo at full size with style-a on `page`, and waits for the result or an error
 * (the worker dies when its heap overflows the 4 GiB); returns where the status log stood
 * before the click, the milliseconds taken and the result's description.
 */
async function runFullSize(page, inputs, timeout, iterations = 1) {
  const byId = (id) => page.locator(`[data-testid="${id}"]`);
  await byId('iterations').fill(String(iterations));
  await byId('style-input').setInputFiles(join(inputs, 'style-a.png'));
  await byId('content-input').setInputFiles(join(inputs, 'photo.png'));
  await page.waitForFunction(() =>
    document
      .querySelector('[data-testid="max-resolution"] option[value="0"]')
      ?.textContent.includes('4000'),
  );
  assert.equal(
    await byId('max-resolution').locator('option[value="0"]').textContent(),
    'Full size (4000×3000)',
  );
  await byId('max-resolution').selectOption('0');
  const logged = (await page.evaluate(() => window.statusLog)).length;
  const started = Date.now();
  await byId('stylize-button').click();
  await page.waitForFunction(
    () =>
      document.querySelector('[data-testid="result"]').dataset.run === '1' ||
      !document.querySelector('[data-testid="error"]').hidden,
    null,
    { timeout },
  );
  const ms = Date.now() - started;
  assert.equal(await byId('error').isHidden(), true, await byId('error').textContent());
  return { logged, ms, meta: await page.locator('#result-meta').textContent() };
}

describe('full size in Chromium on wasm', { timeout: 900_000 }, () => {
  let site;
  let browser;
  let page;
  let inputs;
  let metadata;
  const testId = (id) => page.locator(`[data-testid="${id}"]`);

  before(async () => {
    inputs = await makeInputs();
    await writePhotos(inputs);
    metadata = JSON.parse(await readFile(join(config.modelDir, 'metadata.json'), 'utf8'));
    site = await startSite();
    browser = await launchChromium();
    page = await openPage(browser, site.origin, DEVICE_GB);
  });

  after(async () => {
    await browser?.close();
    await new Promise((done) => site?.server.close(done));
    if (inputs) await rm(inputs, { recursive: true, force: true });
  });

  it('stylizes a 4000×3000 photo at full size in tiles, tile by tile, as the SavedModel does', async (t) => {
    const plan = planAt(metadata, memoryBudgetMb('wasm', DEVICE_GB));
    const tab = watchRenderer();
    const { logged, ms, meta } = await runFullSize(page, inputs, RUN_MS);
    const [, count, side] = meta
      .match(/computed at 4000×3000 in (\d+) tiles of (\d+) px/)
      .map(Number);
    // The tiles a request runs, counted here from the signature's rule (convert/tf_tiles.py):
    // the encoder on the content, the style and the unused second style (one tile), then the
    // decoder on the content's grid.
    const tiles = ({ width, height }) => Math.ceil(width / side) * Math.ceil(height / side);
    assert.equal(count, tiles(PHOTO));
    const expected = 2 * tiles(PHOTO) + tiles(STYLE) + 1;
    const reports = await tileReports(page, logged);
    assert.deepEqual(
      reports,
      Array.from({ length: expected }, (_, i) => [i + 1, expected]),
      'one report per tile, 1 to N, in order',
    );

    assert.equal(side, plan.tile, 'the page’s plan');
    const download = await downloadTo(page, inputs, 'full.png');
    await withinPlan(t, page, plan, tab(), `${count} tiles of ${side} px in ${ms} ms`);
    assert.deepEqual(await pngSize(download), PHOTO);
    assert.match((await pngText(download)).Comment, /computed at 4000×3000 in \d+ tiles of \d+ px/);
    await matchesSavedModel(t, download, 'page vs SavedModel (untiled)', 1, MAX_LEVELS);
    const { live, baseline } = await tensorCounts(page);
    assert.equal(live, baseline, 'no tensor left behind but the kept encodings');
  });

  it('stylizes it in pieces, tile by tile, as the SavedModel does, where one call does not fit', async (t) => {
    // The largest budget at which the page's plan (memory.js fullSizePlan) takes pieces.
    const tiled = tiledRule(metadata);
    let budgetMb = 4096;
    while (budgetMb > 0 && !planAt(metadata, budgetMb).piece) budgetMb -= 8;
    const plan = planAt(metadata, budgetMb);
    assert.ok(plan.tile, `pieces fit ${budgetMb} MB`);
    const small = await openPage(browser, site.origin, (2 * budgetMb) / 1024);
    const tab = watchRenderer();
    const { logged, ms, meta } = await runFullSize(small, inputs, RUN_MS);
    const [, count, piece, side, streamed] = meta.match(
      /computed at 4000×3000 in (\d+) pieces of up to (\d+) px(?: \(tiles of (\d+) px(, streamed)?\))?/,
    );
    assert.deepEqual(
      [Number(piece), Number(side ?? 0), Boolean(streamed)],
      [plan.piece, plan.tile, plan.streamed],
    );
    // The calls a request in pieces makes (convert/pieces.py): a measuring call per piece with
    // the encoder's margin, then a stylizing call per piece with the features' margin too.
    const [measuring, stylizing] = pieceMargins(tiled).map((margin) =>
      planPieces(PHOTO, plan.piece, margin, tiled.align),
    );
    assert.equal(Number(count), measuring.length);
    // Their tiles, counted here from the signature's rule (convert/tf_tiles.py): the style's
    // once (then kept), the unused second style's placeholder at every call (one tile), each
    // measuring call's over its piece, each stylizing call's encoder and decoder tiles over
    // its crop (the moments given: no statistics pass).
    const tiles = ({ width, height }) =>
      plan.tile ? Math.ceil(width / plan.tile) * Math.ceil(height / plan.tile) : 1;
    const expected =
      tiles(STYLE) +
      measuring.length +
      stylizing.length +
      measuring.reduce((sum, { keep }) => sum + tiles(boxSize(keep)), 0) +
      stylizing.reduce((sum, { crop }) => sum + 2 * tiles(boxSize(crop)), 0);
    await reportsEachOf(small, logged, expected, 'one report per tile, 1 to N, in order');

    const download = await downloadTo(small, inputs, 'pieces.png');
    const what = `${count} pieces of up to ${piece} px, tiles of ${plan.tile} px, in ${ms} ms`;
    await withinPlan(t, small, plan, tab(), `${what}, budget ${budgetMb} MB`);
    assert.deepEqual(await pngSize(download), PHOTO);
    assert.match((await pngText(download)).Comment, /computed at 4000×3000 in \d+ pieces/);
    await matchesSavedModel(t, download, 'page (pieces) vs SavedModel (untiled)', 1, MAX_LEVELS);
    const { live, baseline } = await tensorCounts(small);
    assert.equal(live, baseline, 'no tensor left behind but the kept encodings');
    await small.context().close();
  });

  it('streams the photo in tiles where pieces cannot serve and holding its maps does not fit', async (t) => {
    // Two iterations: the second pass's statistics are of the first's output, which pieces
    // cannot measure (memory.js inPieces). The largest budget at which the page's plan
    // (memory.js fullSizePlan) streams this photo: the small test model's maps are small, so
    // the window is narrow.
    let budgetMb = 4096;
    while (budgetMb > 0 && !planAt(metadata, budgetMb, 2).streamed) budgetMb -= 8;
    const plan = planAt(metadata, budgetMb, 2);
    assert.ok(plan.tile, `streamed tiles fit ${budgetMb} MB`);
    const small = await openPage(browser, site.origin, (2 * budgetMb) / 1024);
    const tab = watchRenderer();
    const { logged, ms, meta } = await runFullSize(small, inputs, 4 * RUN_MS, 2);
    const [, count, side] = meta
      .match(/computed at 4000×3000 in (\d+) tiles of (\d+) px, streamed/)
      .map(Number);
    assert.equal(side, plan.tile);
    // Streamed (convert/tf_tiles.py): each pass, the encoder's tiles for the statistics, then
    // each decoder tile with its own encoder tile; the styles' tiles before.
    const tiles = ({ width, height }) => Math.ceil(width / side) * Math.ceil(height / side);
    assert.equal(count, tiles(PHOTO));
    const expected = 2 * 3 * tiles(PHOTO) + tiles(STYLE) + 1;
    await reportsEachOf(small, logged, expected, 'one report per step, 1 to N, in order');
    const download = await downloadTo(small, inputs, 'streamed.png');
    const what = `${count} tiles of ${side} px, streamed, 2 iterations, in ${ms} ms`;
    await withinPlan(t, small, plan, tab(), `${what}, budget ${budgetMb} MB`);
    assert.deepEqual(await pngSize(download), PHOTO);
    await matchesSavedModel(
      t,
      download,
      'page (streamed) vs SavedModel (untiled)',
      2,
      MAX_LEVELS_TWO_PASSES,
    );
    const { live, baseline } = await tensorCounts(small);
    assert.equal(live, baseline, 'no tensor left behind but the kept encodings');
    await small.context().close();
  });

  it('cancels mid-run: no result, and the model reloaded with its tensors only', async () => {
    const logged = (await page.evaluate(() => window.statusLog)).length;
    // A new style re-runs by itself; the content's encodings are re-used.
    await testId('style-input').setInputFiles(join(inputs, 'style-b.png'));
    await page.waitForFunction(
      (from) => window.statusLog.slice(from).some((text) => /tile 3 of \d+/.test(text)),
      logged,
      { timeout: RUN_MS },
    );
    await testId('cancel-button').click();
    await pageReady(page);
    assert.equal(await testId('result').isHidden(), true, 'no result after a Cancel');
    assert.equal(await testId('download').isDisabled(), true, 'nothing to download');
    const { live, baseline } = await tensorCounts(page);
    assert.equal(live, baseline);
  });

  it('refuses in words, before any work, what does not fit this device', async () => {
    // A small device: a 256 MB budget on wasm.
    const small = await openPage(browser, site.origin, 0.5);
    const byId = (id) => small.locator(`[data-testid="${id}"]`);
    await byId('style-input').setInputFiles(join(inputs, 'style-a.png'));
    for (const [file, size] of [
      ['photo.png', '4000×3000'],
      ['strip.png', '30000×400'],
    ]) {
      await byId('content-input').setInputFiles(join(inputs, file));
      await small.waitForFunction(
        (label) =>
          document
            .querySelector('[data-testid="max-resolution"] option[value="0"]')
            .textContent.includes(label),
        size,
      );
      await byId('max-resolution').selectOption('0');
      const logged = (await small.evaluate(() => window.statusLog)).length;
      await byId('stylize-button').click();
      await small.waitForFunction(
        () => document.querySelector('[data-testid="status"]').dataset.state === 'error',
      );
      const error = await byId('error').textContent();
      assert.match(
        error,
        new RegExp(
          `^At full size \\(${size}\\) with 1 iteration, it needs about [\\d.]+ [MG]B of memory even in the smallest tiles, more than the 256 MB this device allows on wasm\\. Choose \\d+ px or less, or a finer stroke size\\.$`,
        ),
      );
      const log = (await small.evaluate(() => window.statusLog)).slice(logged);
      assert.ok(!log.some((text) => text.startsWith('Stylizing')), 'nothing started');
      assert.equal(await byId('result').isHidden(), true);
    }
    for (const file of ['cut.jpg', 'damaged.jpg']) {
      await byId('content-input').setInputFiles(join(inputs, file));
      await small.waitForFunction(
        (name) => document.querySelector('[data-testid="error"]').textContent.includes(name),
        file,
      );
      assert.equal(
        await byId('error').textContent(),
        `“${file}” could not be decoded (The source image could not be decoded.).`,
      );
    }
    await small.context().close();
  });
});
