// Downloads a TF.js graph model (model.json + weight shards) with byte progress, keeps it in the
// Cache API so that later visits (and offline ones) read it from disk, and returns the
// ModelArtifacts that tf.loadGraphModelSync accepts.
//
// Cache keys carry a digest of model.json (`?v=...`), so a re-converted model is downloaded
// again and the superseded shards are deleted.

export const MODEL_CACHE = 'sanet-model-v1';

export class ModelLoadError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'ModelLoadError';
  }
}

async function openCache() {
  try {
    return typeof caches === 'undefined' ? null : await caches.open(MODEL_CACHE);
  } catch {
    return null; // e.g. storage disabled: work without a cache
  }
}

/** A short fingerprint of model.json: SHA-256 where available, else FNV-1a (plain HTTP). */
async function digest(text) {
  const bytes = new TextEncoder().encode(text);
  if (globalThis.crypto?.subtle) {
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return Array.from(hash.slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
  }
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return `fnv${hash.toString(16)}${bytes.length.toString(16)}`;
}

async function fetchOk(url) {
  const response = await fetch(url, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return response;
}

/** Reads a response body to one ArrayBuffer, reporting each chunk's size. */
async function readWithProgress(response, onChunk) {
  if (!response.body) {
    const buffer = await response.arrayBuffer();
    onChunk(buffer.byteLength);
    return buffer;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    onChunk(value.byteLength);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out.buffer;
}

async function readModelJson(modelUrl, cache) {
  try {
    const text = await (await fetchOk(modelUrl)).text();
    return { text, fromCache: false };
  } catch (error) {
    const hit = cache && (await cache.match(modelUrl));
    if (hit) return { text: await hit.text(), fromCache: true };
    throw new ModelLoadError(`The model could not be downloaded (${error.message}).`, {
      cause: error,
    });
  }
}

/** Deletes cached files of the same model folder that belong to another model.json digest. */
async function pruneOldVersions(cache, modelUrl, version) {
  const folder = new URL('.', modelUrl).href;
  for (const request of await cache.keys()) {
    const url = new URL(request.url);
    const v = url.searchParams.get('v');
    if (v && v !== version && new URL('.', url).href === folder) await cache.delete(request);
  }
}

/**
 * @param {string} modelUrl absolute URL of model.json
 * @param {{totalBytes?: number, onProgress?: (p: {loaded: number, total: number|null,
 *   cached: boolean}) => void, onFirstShard?: (artifacts: object, shard: ArrayBuffer) => void}}
 *   options totalBytes: the variant's size from metadata.json; onFirstShard: called when the
 *   first of several weight shards is in, with the artifacts minus their weights, while the
 *   rest loads
 * @returns {Promise<{artifacts: object, fromCache: boolean, bytes: number, cacheError?: string}>}
 */
export async function loadModelArtifacts(
  modelUrl,
  { totalBytes = null, onProgress, onFirstShard } = {},
) {
  const cache = await openCache();
  const { text, fromCache: jsonFromCache } = await readModelJson(modelUrl, cache);
  let model;
  try {
    model = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError('model.json is not valid JSON.', { cause: error });
  }
  if (!model.modelTopology || !Array.isArray(model.weightsManifest)) {
    throw new ModelLoadError('model.json is not a TF.js graph model.');
  }
  const version = await digest(text);
  let loaded = text.length;
  let allCached = true; // every weight shard came from the cache
  let cacheError;
  const report = () => onProgress?.({ loaded, total: totalBytes, cached: allCached });
  const remember = async (key, body, type) => {
    if (!cache || cacheError) return;
    try {
      await cache.put(key, new Response(body, { headers: { 'content-type': type } }));
    } catch (error) {
      cacheError = error.message; // quota: the model still runs, it is only not kept
    }
  };
  report();

  const artifacts = {
    modelTopology: model.modelTopology,
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    signature: model.signature,
    userDefinedMetadata: model.userDefinedMetadata,
    modelInitializer: model.modelInitializer,
    initializerSignature: model.initializerSignature,
    weightSpecs: model.weightsManifest.flatMap((group) => group.weights),
  };
  const buffers = [];
  const paths = model.weightsManifest.flatMap((group) => group.paths);
  for (const path of paths) {
    const url = new URL(path, modelUrl);
    url.searchParams.set('v', version);
    let response = cache && (await cache.match(url.href));
    const hit = Boolean(response);
    if (!hit) {
      allCached = false;
      try {
        response = await fetchOk(url.href);
      } catch (error) {
        throw new ModelLoadError(`A weight file of the model is missing (${error.message}).`, {
          cause: error,
        });
      }
    }
    const buffer = await readWithProgress(response, (n) => {
      loaded += n;
      report();
    });
    if (!hit) await remember(url.href, buffer, 'application/octet-stream');
    buffers.push(buffer);
    if (buffers.length === 1 && paths.length > 1) onFirstShard?.(artifacts, buffer);
  }
  if (!jsonFromCache) await remember(modelUrl, text, 'application/json');
  if (cache && !cacheError) await pruneOldVersions(cache, modelUrl, version);

  return {
    artifacts: { ...artifacts, weightData: buffers },
    fromCache: allCached,
    bytes: loaded,
    cacheError,
  };
}
