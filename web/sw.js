// Service worker: keeps the site's own files for offline use and adds the cross-origin isolation
// headers (needed for WASM threads) when the static host does not send them.
//
// The model's weights are cached by the page's loader (src/model-store.js), which knows their
// versions; this worker lets those requests through untouched, except model/metadata.json.
const SITE_CACHE = 'sanet-site-v1';
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SITE_CACHE);
      const manifest = await (await fetch('dist/precache.json', { cache: 'no-cache' })).json();
      await cache.addAll(manifest.files);
      await cache.add('model/metadata.json').catch(() => {}); // absent until `make convert`
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('sanet-site-') && name !== SITE_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

function isolate(response) {
  if (response.type !== 'basic' || response.headers.has('Cross-Origin-Embedder-Policy')) {
    return response;
  }
  const headers = new Headers(response.headers);
  for (const [key, value] of Object.entries(ISOLATION)) headers.set(key, value);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

async function networkFirst(request) {
  const cache = await caches.open(SITE_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') await cache.put(request, response.clone());
    return isolate(response);
  } catch (error) {
    const hit =
      (await cache.match(request, { ignoreSearch: true })) ??
      (request.mode === 'navigate' ? await cache.match('index.html') : undefined);
    if (hit) return isolate(hit);
    throw error;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  const path = url.pathname.slice(new URL(self.registration.scope).pathname.length);
  if (path.startsWith('model/') && path !== 'model/metadata.json') return;
  event.respondWith(networkFirst(request));
});
