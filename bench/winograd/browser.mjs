// Headless Debian Chromium and web/serve.mjs (cross-origin isolated, so WASM has threads) for
// the Winograd drivers, run.mjs and end_to_end.mjs.
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/** Serves `mounts` ({"/prefix": folder}) over web/ and launches Chromium: {browser, server, base}. */
export async function open(repo, executablePath, mounts) {
  const require = createRequire(import.meta.url);
  const { chromium } = require(
    path.join(repo, "node_modules", "playwright-core"),
  );
  const { startServer } = await import(
    pathToFileURL(path.join(repo, "web", "serve.mjs"))
  );
  const server = await startServer({ port: 0, mounts, isolated: true });
  const browser = await chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
    ],
  });
  return { browser, server, base: `http://127.0.0.1:${server.address().port}` };
}
