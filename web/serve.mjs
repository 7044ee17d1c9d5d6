// A small static server for the site: correct MIME types (application/wasm included) and the
// Cross-Origin-Opener-Policy / Cross-Origin-Embedder-Policy headers that WASM threads need.
// Any static host that sends those headers can serve web/ the same way.
//
// Usage: node web/serve.mjs [--port 8000] [--host 127.0.0.1] [--root web] [--model-dir DIR]
// --model-dir serves DIR at /model/ (default: web/model, where `make convert` writes). A folder
// asked for without its trailing slash is redirected to it, as static hosts do, so that the
// page's relative links resolve inside it.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const web = dirname(fileURLToPath(import.meta.url));

export const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

export const SECURITY_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

/** Maps a URL path onto a file under root or a mounted folder ({'/model': dir}), refusing escapes. */
function resolvePath(urlPath, root, mounts) {
  let base = root;
  let rest = decodeURIComponent(urlPath);
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (dir && (rest === prefix || rest.startsWith(`${prefix}/`))) {
      base = dir;
      rest = rest.slice(prefix.length);
      break;
    }
  }
  const file = normalize(join(base, rest));
  if (file !== base && !file.startsWith(base.endsWith(sep) ? base : base + sep)) return null;
  return file;
}

/**
 * @param {{root?: string, modelDir?: string, distDir?: string, mounts?: Record<string, string>,
 *   isolated?: boolean, port?: number, host?: string, log?: boolean}} options distDir: serve
 *   this folder at /dist/ (the tests' build); mounts: more folders ({'/bench': dir}, for the
 *   bench); isolated: false leaves out COOP/COEP (the bench measures WASM without threads)
 * @returns {Promise<import('node:http').Server>} listening; its address() has the port
 */
export function startServer({
  root = web,
  modelDir,
  distDir,
  mounts: extra = {},
  isolated = true,
  port = 8000,
  host = '127.0.0.1',
  log,
} = {}) {
  const rootDir = resolve(root);
  const mounts = {
    '/model': resolve(modelDir ?? join(rootDir, 'model')),
    '/dist': distDir && resolve(distDir),
    ...Object.fromEntries(Object.entries(extra).map(([prefix, dir]) => [prefix, resolve(dir)])),
  };
  const headers = { ...SECURITY_HEADERS };
  if (!isolated) {
    delete headers['Cross-Origin-Opener-Policy'];
    delete headers['Cross-Origin-Embedder-Policy'];
  }
  const server = createServer(async (request, response) => {
    const send = (status, body, extraHeaders = {}) => {
      response.writeHead(status, { ...headers, ...extraHeaders });
      response.end(body);
      if (log) console.log(`${status} ${request.method} ${request.url}`);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return send(405, 'Method not allowed\n', { Allow: 'GET, HEAD' });
    }
    let file;
    let url;
    try {
      url = new URL(request.url, 'http://localhost');
      file = resolvePath(url.pathname, rootDir, mounts);
    } catch {
      return send(400, 'Bad request\n');
    }
    if (!file) return send(403, 'Forbidden\n');
    try {
      let info = await stat(file);
      if (info.isDirectory()) {
        if (!url.pathname.endsWith('/')) {
          return send(301, '', { Location: `${url.pathname}/${url.search}` });
        }
        file = join(file, 'index.html');
        info = await stat(file);
      }
      const type = MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
      response.writeHead(200, {
        ...headers,
        'Content-Type': type,
        'Content-Length': info.size,
        'Last-Modified': info.mtime.toUTCString(),
      });
      if (request.method === 'HEAD') return response.end();
      createReadStream(file).pipe(response);
      if (log) console.log(`200 ${request.method} ${request.url}`);
    } catch {
      send(404, 'Not found\n', { 'Content-Type': 'text/plain; charset=utf-8' });
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolvePromise(server));
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: process.env.PORT ?? '8000' },
      host: { type: 'string', default: '127.0.0.1' },
      root: { type: 'string', default: web },
      'model-dir': { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  });
  const server = await startServer({
    root: values.root,
    modelDir: values['model-dir'],
    port: Number(values.port),
    host: values.host,
    log: !values.quiet,
  });
  const { address, port } = server.address();
  console.log(`Serving ${resolve(values.root)} at http://${address}:${port}/ (Ctrl+C to stop)`);
}
