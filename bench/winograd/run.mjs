// Drive bench/winograd/page.html in headless Debian Chromium (cross-origin isolated, so WASM
// has threads), one layer shape after another.
//
//   node bench/winograd/run.mjs REQUEST.json RESPONSE.json
//
// REQUEST (written by bench/winograd.py): {chromium, repo, repeats, tiles: [2, 4],
//   layers: [{channels, outputs, height, width}] (height and width: the convolution's output),
//   chains: [{channels, height, width}] (the encoder's conv4_1 to relu5_1 on that input)}
import fs from "node:fs";
import path from "node:path";

import { open } from "./browser.mjs";

const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { browser, server, base } = await open(request.repo, request.chromium, {
  "/winograd": path.join(request.repo, "bench", "winograd"),
  "/bench": path.join(request.repo, "bench", "tfjs"),
  "/tfjs": path.join(request.repo, "node_modules", "@tensorflow"),
});
const response = { layers: [], chains: [], errors: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (error) => response.errors.push(String(error)));
  await page.goto(`${base}/winograd/page.html`);
  await page.waitForFunction(() => window.winograd);
  response.env = await page.evaluate(() => window.winograd.start());
  for (const layer of request.layers) {
    process.stderr.write(
      `winograd: ${layer.channels}->${layer.outputs} at ${layer.height}x${layer.width}\n`,
    );
    const result = await page.evaluate((l) => window.winograd.layer(l), {
      ...layer,
      repeats: request.repeats,
      tiles: request.tiles,
    });
    response.layers.push({ ...layer, ...result });
    fs.writeFileSync(process.argv[3], JSON.stringify(response));
  }
  for (const chain of request.chains ?? []) {
    process.stderr.write(
      `winograd: conv4_1 to relu5_1 from ${chain.height}x${chain.width}\n`,
    );
    const result = await page.evaluate((c) => window.winograd.chain(c), {
      ...chain,
      repeats: request.repeats,
    });
    response.chains.push({ ...chain, ...result });
    fs.writeFileSync(process.argv[3], JSON.stringify(response));
  }
} catch (error) {
  response.errors.push(String(error.stack ?? error));
} finally {
  fs.writeFileSync(process.argv[3], JSON.stringify(response));
  await browser.close();
  server.close();
}
