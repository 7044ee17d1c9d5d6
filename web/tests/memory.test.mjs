// A request too large for this device's memory is refused before it starts, in plain words,
// with the largest resolution that fits; the page's estimate follows the model package's rule
// (sanet/request.py estimate_memory_mb, checked against it in tests/test_contract.py).
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  estimateMemoryMb,
  estimateTiledMemoryMb,
  fullSizePlan,
  inPieces,
  memoryBudgetMb,
  pageOwnMb,
  piecesWork,
  planInPieces,
  planTiles,
  tiledPixels,
  tiledRule,
} from '../src/memory.js';
import { launchChromium, makeInputs, pageReady, startSite, waitForRun } from './helpers.mjs';

// What navigator.deviceMemory says in the test: a small phone (0.5 GB: a 256 MB budget).
const DEVICE_GB = 0.5;

describe('the memory budget without a browser', () => {
  it('allows half the device, and on WebAssembly at most its 4 GiB heap', () => {
    assert.equal(memoryBudgetMb('webgl', 2), 1024);
    assert.equal(memoryBudgetMb('wasm', 2), 1024);
    assert.equal(memoryBudgetMb('wasm', 16), 4096);
    assert.equal(memoryBudgetMb('webgpu', 16), 8192);
    assert.equal(memoryBudgetMb('wasm', undefined), 2048, 'unknown: a 4 GB device');
  });

  it('grows with the attention: content positions times style positions', () => {
    const rule = {
      bytesPerFloat: 4,
      attentionCopies: 3,
      activationCopies: 3,
      activationChannels: 64,
    };
    const style = { height: 512, width: 512 };
    const small = estimateMemoryMb(rule, { height: 384, width: 512 }, style, false);
    const large = estimateMemoryMb(rule, { height: 1536, width: 2048 }, style, false);
    assert.ok(large > 8 * small, `${large} MB vs ${small} MB`); // 16x the positions
    const blended = estimateMemoryMb(rule, { height: 1536, width: 2048 }, style, true);
    assert.ok(blended > large, 'the content-content attention of strength < 1 is larger');
  });
});

// A full-size model's rules, as metadata.json publishes them (made up, not fitted).
const RULE = { bytesPerFloat: 4, attentionCopies: 3, activationCopies: 3, activationChannels: 64 };
const TILED = tiledRule({
  memory: {
    tiled_fixed_mb: 256,
    tiled_image_copies: 16,
    tiled_stream_map_copies: 1,
    tiled_map_copies: 5,
    tiled_activation_copies: 8,
    tiled_pass_image_copies: 2,
    tiled_pass_map_copies: 1,
    tiled_pieces_fixed_mb: 128,
    map_channels: 512,
  },
  tiling: { align: 16, min_tile: 64, encoder_margin: 80, features_margin: 6, relu4_1_stride: 8 },
});

describe('full size in tiles without a browser', () => {
  const [rule, tiled] = [RULE, TILED];
  const photo = { height: 1500, width: 2000 };
  const style = { height: 512, width: 512 };

  it('takes the largest tile on the grid whose estimate fits the budget', () => {
    const { tile, neededMb, streamed } = planTiles(rule, tiled, photo, style, false, null, 4096);
    assert.equal(tile % 16, 0);
    assert.ok(neededMb <= 4096 && !streamed);
    const larger = estimateTiledMemoryMb(rule, tiled, photo, style, tile + 16, false);
    assert.ok(larger > 4096, `a tile of ${tile + 16} px would need ${larger} MB`);
  });

  it('streams when holding the maps fits only in tiles that run more pixels', () => {
    const larger = { height: 3000, width: 4000 };
    const plan = planTiles(rule, tiled, larger, style, false, null, 4096);
    assert.ok(plan.streamed && plan.neededMb <= 4096);
    const args = [rule, tiled, larger, style, plan.tile + 16, false, null, 1, true];
    assert.ok(estimateTiledMemoryMb(...args) > 4096, 'the largest streamed tile that fits');
    const held = planTiles(rule, tiled, larger, style, true, null, 4096);
    assert.ok(!held.streamed, 'a blend needs the maps');
    assert.ok(
      tiledPixels(larger, plan.tile, tiled, true) < tiledPixels(larger, 64, tiled, false),
      'fewer pixels than the smallest held tiles',
    );
  });

  it('grows at most with the pixels in tiles, under untiled, and a blend with the photo', () => {
    const larger = { height: 3000, width: 4000 };
    const tiledMb = estimateTiledMemoryMb(rule, tiled, photo, style, 512, false);
    const largerMb = estimateTiledMemoryMb(rule, tiled, larger, style, 512, false);
    assert.ok(largerMb <= 4 * tiledMb);
    assert.ok(largerMb < estimateMemoryMb(rule, larger, style, false) / 2, 'less than untiled');
    const blended = estimateTiledMemoryMb(rule, tiled, photo, style, 512, true);
    assert.ok(blended > 2 * tiledMb, 'every tile attends to all the photo’s positions');
  });

  it('finds no tile for what cannot fit, and names what the smallest needs', () => {
    const huge = { height: 10000, width: 10000 }; // 100 megapixels
    const { tile, neededMb } = planTiles(rule, tiled, huge, style, false, null, 4096);
    assert.equal(tile, null);
    const streamed = [rule, tiled, huge, style, 64, false, null, 1, true];
    assert.equal(neededMb, estimateTiledMemoryMb(...streamed)); // the least of the two
    assert.ok(neededMb < estimateTiledMemoryMb(rule, tiled, huge, style, 64, false));
    assert.ok(neededMb > 4096);
  });

  it('is not offered by a model without a tiling rule', () => {
    assert.equal(tiledRule({ memory: {}, tiling: {} }), null);
  });
});

describe('full size in pieces without a browser', () => {
  const [rule, tiled] = [RULE, TILED];
  const style = { height: 512, width: 512 };

  it('serves one pass at strength 1 without a region, on a photo larger than a piece', () => {
    const photo = { height: 3000, width: 4000 };
    assert.equal(inPieces(photo, false, 1, 1024), true);
    assert.equal(inPieces(photo, true, 1, 1024), false, 'the content attends to all of itself');
    assert.equal(inPieces(photo, false, 2, 1024), false, 'the second pass measures the first’s');
    assert.equal(inPieces({ height: 768, width: 1024 }, false, 1, 1024), false, 'one piece');
  });

  it('plans each call for the largest crop, so its memory stays flat whatever the photo', () => {
    const photo = { height: 3000, width: 4000 };
    const plan = planInPieces(rule, tiled, photo, style, null, 4096, 1024);
    // A piece of at most 1024 + 16 px with 80 + 48 px on each side: 1296 px.
    const crop = { height: 1296, width: 1296 };
    const call = planTiles(rule, tiled, crop, style, false, null, 4096, 1, true);
    assert.deepEqual(plan, { ...call, piece: 1024 });
    const four = planInPieces(rule, tiled, { height: 6000, width: 8000 }, style, null, 4096, 1024);
    assert.deepEqual(four, plan, '48 megapixels: the same calls');
  });

  it('gives the heap what the page’s own part of the tab leaves', () => {
    const photo = { height: 3000, width: 4000 };
    // 384 MiB and 52 bytes a pixel: 595.1 MiB for 12 megapixels.
    assert.equal(pageOwnMb(photo), 384 + 596);
    const plan = fullSizePlan(rule, tiled, photo, style, false, null, 2048);
    assert.ok(plan.tile, JSON.stringify(plan));
    assert.equal(plan.neededMb, plan.heapMb + 980, 'the tab: the heap and the page’s own');
    assert.ok(plan.neededMb <= 2048 && plan.heapMb <= 2048 - 980);
    // The same pieces with the budget for the heap alone would have taken larger tiles.
    const heapOnly = planInPieces(rule, tiled, photo, style, null, 2048, plan.piece);
    assert.ok(heapOnly.tile > plan.tile && heapOnly.neededMb > 2048 - 980);
    // Where the page's own part leaves less than the smallest calls need: refused, with what
    // the tab would need.
    const refused = fullSizePlan(rule, tiled, photo, style, false, null, 1536);
    assert.equal(refused.tile, null);
    assert.ok(refused.neededMb > 1536);
  });

  it('runs in one call what one call holds in large tiles, else in pieces that fit', () => {
    const photo = { height: 1500, width: 2000 };
    const one = fullSizePlan(rule, tiled, photo, style, false, null, 4096);
    assert.ok(one.tile && one.piece === undefined, JSON.stringify(one));
    assert.equal(one.neededMb - one.heapMb, pageOwnMb(photo));
    const larger = { height: 3000, width: 4000 };
    assert.equal(planTiles(rule, tiled, larger, style, false, null, 3072 - 980).tile, null);
    const fits = fullSizePlan(rule, tiled, larger, style, false, null, 3072);
    assert.ok(fits.piece && fits.neededMb <= 3072, JSON.stringify(fits));
    const smaller = fullSizePlan(rule, tiled, larger, style, false, null, 2048);
    assert.ok(smaller.piece < fits.piece && smaller.neededMb <= 2048, 'smaller pieces');
    // A blend cannot run in pieces: refused, with what its smallest tiles need.
    const blend = fullSizePlan(rule, tiled, larger, style, true, null, 2048);
    assert.equal(blend.tile, null);
    assert.equal(blend.piece, undefined);
  });

  it('takes pieces over one call where one call’s tiles would run more pixels', () => {
    const photo = { height: 3000, width: 4000 };
    const one = planTiles(rule, tiled, photo, style, false, null, 4096); // streamed, small tiles
    const chosen = fullSizePlan(rule, tiled, photo, style, false, null, 4096);
    assert.ok(chosen.piece, JSON.stringify(chosen));
    const inTiles = tiledPixels(photo, one.tile, tiled, one.streamed);
    assert.ok(piecesWork(photo, chosen, tiled).pixels < inTiles);
  });

  it('counts the pixels each call runs (hand-counted on a small photo)', () => {
    const small = { ...tiled, encoderMargin: 32, featuresMargin: 16 }; // 2 positions of 8 px
    // Pieces of 96 px of 149x229 cut at rows 80 and columns 80, 160. Measuring crops (32 px
    // margins): rows 112 and 101 high, columns 112, 144 and 101 wide, one tile each over its
    // crop: 213 x 357. Stylizing crops (48 px): 128 and 117 by 128, 176 and 117, the encoder
    // and the decoder over each: 2 x 245 x 421.
    const work = piecesWork(
      { height: 149, width: 229 },
      { piece: 96, tile: 0, streamed: false },
      small,
    );
    assert.deepEqual(work, { pixels: 213 * 357 + 2 * 245 * 421, calls: 12 });
  });
});

describe('the page on a device with little memory', { timeout: 300_000 }, () => {
  let site;
  let browser;
  let page;
  let inputs;
  const testId = (id) => page.locator(`[data-testid="${id}"]`);

  before(async () => {
    inputs = await makeInputs();
    site = await startSite();
    browser = await launchChromium();
    const context = await browser.newContext();
    await context.addInitScript((gb) => {
      Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => gb });
    }, DEVICE_GB);
    page = await context.newPage();
    await page.goto(`${site.origin}/`);
    await pageReady(page);
    await testId('backend').selectOption('wasm');
    await pageReady(page, 'on wasm');
  });

  after(async () => {
    await browser?.close();
    await new Promise((done) => site?.server.close(done));
    if (inputs) await rm(inputs, { recursive: true, force: true });
  });

  it('refuses a photo at 2048 px before starting, and runs it at what fits', async () => {
    await testId('max-resolution').selectOption('2048');
    await testId('style-input').setInputFiles(join(inputs, 'style-a.png'));
    await testId('content-input').setInputFiles(join(inputs, 'large.png'));
    await testId('stylize-button').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="status"]').dataset.state === 'error',
      null,
      { timeout: 60_000 },
    );
    assert.match(await testId('status').textContent(), /Not started/);
    const error = await testId('error').textContent();
    assert.match(
      error,
      /^At 2048 px with 1 iteration, it needs about [\d.]+ [MG]B of memory, more than the 256 MB this device allows on wasm\. Choose (\d+) px or less, or another backend\.$/,
    );
    assert.equal(await testId('result').isHidden(), true, 'nothing ran');
    const [, fits] = error.match(/Choose (\d+) px/);
    await testId('max-resolution').selectOption(fits);
    await testId('stylize-button').click();
    await waitForRun(page, 1, 0);
    assert.match(await page.locator('#result-meta').textContent(), /computed at \d+×\d+/);
  });
});
