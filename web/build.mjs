// Builds the site's scripts into web/dist/: the page and the inference worker bundled with
// esbuild from the npm packages, TF.js's .wasm binaries copied next to the worker, and
// precache.json (the files the service worker keeps for offline use).
//
// Usage: node web/build.mjs [--test-hooks --out DIR]
// --test-hooks builds the browser tests' variant (src/test-hooks.js compiled in) into DIR, which
// the tests serve at /dist/; web/dist itself never contains the hooks.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const web = dirname(fileURLToPath(import.meta.url));
const wasmSource = join(web, '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');

/** Builds into `dist`; returns how many files the service worker precaches. */
export async function build({ dist = join(web, 'dist'), testHooks = false } = {}) {
  const common = {
    bundle: true,
    minify: process.env.SANET_MINIFY !== '0',
    sourcemap: 'linked',
    target: ['chrome100', 'firefox110', 'safari16'],
    define: {
      'process.env.NODE_ENV': '"production"',
      SANET_TEST_HOOKS: String(testHooks),
    },
    logLevel: 'warning',
    legalComments: 'linked',
  };
  await rm(dist, { recursive: true, force: true });
  await mkdir(join(dist, 'wasm'), { recursive: true });
  await esbuild.build({
    ...common,
    entryPoints: { main: join(web, 'src', 'main.js') },
    format: 'esm',
    outdir: dist,
    // Code the page loads on demand (import()) goes to its own file: the video muxers.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
  });
  // A classic (IIFE) worker runs in every browser that has module-less workers.
  await esbuild.build({
    ...common,
    entryPoints: { worker: join(web, 'src', 'worker.js') },
    format: 'iife',
    outdir: dist,
  });
  for (const name of await readdir(wasmSource)) {
    if (name.endsWith('.wasm')) await copyFile(join(wasmSource, name), join(dist, 'wasm', name));
  }

  const shell = ['index.html', 'style.css', 'favicon.svg'];
  const built = (await readdir(dist, { recursive: true }))
    .filter((name) => /\.(js|wasm)$/.test(name))
    .map((name) => name.split('\\').join('/'));
  const samples = (await readdir(join(web, 'samples')))
    .filter((name) => name.endsWith('.jpg'))
    .map((name) => `samples/${name}`);
  const files = [...shell, ...built.map((name) => `dist/${name}`), ...samples].sort();
  const hash = createHash('sha256');
  for (const file of files) {
    const path = file.startsWith('dist/') ? join(dist, file.slice(5)) : join(web, file);
    hash.update(file).update(await readFile(path));
  }
  await writeFile(
    join(dist, 'precache.json'),
    `${JSON.stringify({ version: hash.digest('hex').slice(0, 16), files: ['./', ...files] }, null, 2)}\n`,
  );
  return files.length;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { 'test-hooks': { type: 'boolean', default: false }, out: { type: 'string' } },
  });
  if (values['test-hooks'] && !values.out) throw new Error('--test-hooks needs --out DIR');
  const dist = values.out ? resolve(values.out) : join(web, 'dist');
  const count = await build({ dist, testHooks: values['test-hooks'] });
  console.log(`built ${relative(process.cwd(), dist)}: ${count} files to precache`);
}
