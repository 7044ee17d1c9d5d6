// A static HTTP server for the TF.js benchmark page, on 127.0.0.1 only.
//
//   /bench/...          bench/tfjs/ (page.html, page.js)
//   /tfjs/<package>/... node_modules/@tensorflow/<package>/dist/ (TF.js from node_modules, no CDN)
//   /model/...          the converted model directory under test
//   /inputs/...         the benchmark's input images as raw float32
//   /experiments/...    rewritten copies of the model (bench/experiments.py)
//
// Every response carries Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-
// Policy: require-corp, which make the page cross-origin isolated: without isolation there is
// no SharedArrayBuffer and the wasm backend silently falls back to its single-threaded build.
// Paths under /plain/ are the same files without those headers, to measure that fallback.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.map': 'application/json; charset=utf-8',
};

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

function inside(base, rest) {
  const file = normalize(join(base, rest));
  return file === base || file.startsWith(base + sep) ? file : null;
}

/**
 * @param {{repo: string, modelDir: string, inputsDir: string, experimentsDir?: string}} dirs
 * @returns {Promise<{server: import('node:http').Server, url: string, log: object[]}>}
 */
export async function startServer({ repo, modelDir, inputsDir, experimentsDir }) {
  const mounts = {
    '/bench/': resolve(repo, 'bench', 'tfjs'),
    '/tfjs/': resolve(repo, 'node_modules', '@tensorflow'),
    '/model/': resolve(modelDir),
    '/inputs/': resolve(inputsDir),
    '/experiments/': resolve(experimentsDir ?? inputsDir),
  };
  const log = [];
  const server = createServer(async (request, response) => {
    let path = decodeURIComponent(new URL(request.url, 'http://127.0.0.1').pathname);
    const isolated = !path.startsWith('/plain/');
    if (!isolated) path = path.slice('/plain'.length);
    const headers = {
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-cache',
      ...(isolated ? ISOLATION_HEADERS : {}),
    };
    let file = null;
    for (const [prefix, base] of Object.entries(mounts)) {
      if (!path.startsWith(prefix)) continue;
      let rest = path.slice(prefix.length);
      // TF.js packages: only their dist/ folders are served.
      if (prefix === '/tfjs/') {
        const [pkg, ...tail] = rest.split('/');
        rest = join(pkg, 'dist', ...tail);
      }
      file = inside(base, rest);
      break;
    }
    const info = file && (await stat(file).catch(() => null));
    if (!info || !info.isFile()) {
      response.writeHead(404, headers);
      response.end('not found\n');
      return;
    }
    log.push({ path, bytes: info.size, at: performance.now() });
    response.writeHead(200, {
      ...headers,
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': info.size,
    });
    createReadStream(file).pipe(response);
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${server.address().port}`, log };
}
