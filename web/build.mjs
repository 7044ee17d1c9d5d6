// Builds the site's scripts into web/dist/: the page and the inference worker bundled with
// esbuild from the npm packages, TF.js's .wasm binaries copied next to the worker, and
// precache.json (the files the service worker keeps for offline use).
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const web = dirname(fileURLToPath(import.meta.url));
const dist = join(web, 'dist');
const wasmSource = join(web, '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');

const common = {
  bundle: true,
  minify: process.env.SANET_MINIFY !== '0',
  sourcemap: 'linked',
  target: ['chrome100', 'firefox110', 'safari16'],
  define: { 'process.env.NODE_ENV': '"production"' },
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
  .map((name) => `dist/${name.split('\\').join('/')}`);
const samples = (await readdir(join(web, 'samples')))
  .filter((name) => name.endsWith('.jpg'))
  .map((name) => `samples/${name}`);
const files = [...shell, ...built, ...samples].sort();
const hash = createHash('sha256');
for (const file of files) hash.update(file).update(await readFile(join(web, file)));
await writeFile(
  join(dist, 'precache.json'),
  `${JSON.stringify({ version: hash.digest('hex').slice(0, 16), files: ['./', ...files] }, null, 2)}\n`,
);
console.log(`built ${relative(process.cwd(), dist)}: ${files.length} files to precache`);
