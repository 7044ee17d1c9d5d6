// Maps the model contract's logical tensor names onto the names model.json declares.
//
// The converter writes a `signature` whose keys and tensor names vary with the tool chain
// ("content", "content:0", "serving_default_content:0", ...). TF.js's GraphModel addresses its
// inputs and outputs by the signature's keys, so that is what the adapter hands back. The page
// only speaks the logical names below; the adapter finds the matching entry once, at load time,
// and fails loudly if the model does not offer one.

// The encoder's features of each image (convert/contract.py ENCODINGS): returned by every run,
// taken back by the next (src/encodings.js).
export const ENCODING_NAMES = ['content', 'style', 'style2'].flatMap((image) => [
  `${image}_relu4_1`,
  `${image}_relu5_1`,
]);
export const INPUT_NAMES = [
  'content',
  'style',
  'iterations',
  'max_resolution',
  'strength',
  'style_resolution',
  'style2',
  'mix',
  'mask',
  'keep_colors',
  'tile',
  'stream',
  'measure',
  'content_moments',
  ...ENCODING_NAMES,
];
export const OUTPUT_NAME = 'result';
// A measuring call's output (pieces.js).
export const MOMENTS_NAME = 'content_moments';

const bare = (name) =>
  String(name)
    .replace(/:\d+$/, '')
    .replace(/^serving_default_/, '');

function lookup(entries, logical) {
  const list = Object.entries(entries ?? {});
  const exact = list.find(([key, info]) => bare(key) === logical || bare(info.name) === logical);
  if (exact) return exact[0];
  const suffixed = list.filter(
    ([key, info]) => bare(key).endsWith(`_${logical}`) || bare(info.name).endsWith(`_${logical}`),
  );
  return suffixed.length === 1 ? suffixed[0][0] : null;
}

/**
 * @param {{inputs?: object, outputs?: object}} signature the `signature` field of model.json
 * @returns {{inputs: Record<string, string>, output: string, moments: string,
 *   encodings: Record<string, string>, feed: (values: object) => object}} inputs: logical name
 *   -> signature key; output and moments: the result's and content_moments' signature keys;
 *   encodings: ENCODING_NAMES -> their output keys
 */
export function signatureAdapter(signature) {
  if (!signature?.inputs || !signature?.outputs) {
    throw new Error('model.json declares no signature (inputs and outputs)');
  }
  const inputs = {};
  const missing = [];
  for (const name of INPUT_NAMES) {
    inputs[name] = lookup(signature.inputs, name);
    if (!inputs[name]) missing.push(name);
  }
  const output = lookup(signature.outputs, OUTPUT_NAME);
  if (!output) missing.push(OUTPUT_NAME);
  const moments = lookup(signature.outputs, MOMENTS_NAME);
  if (!moments) missing.push(`${MOMENTS_NAME} (output)`);
  const encodings = {};
  for (const name of ENCODING_NAMES) {
    encodings[name] = lookup(signature.outputs, name);
    if (!encodings[name]) missing.push(`${name} (output)`);
  }
  if (missing.length) {
    const offered = [...Object.keys(signature.inputs), ...Object.keys(signature.outputs)];
    throw new Error(`model signature lacks ${missing.join(', ')} (it has ${offered.join(', ')})`);
  }
  return {
    inputs,
    output,
    moments,
    encodings,
    /** Turns {content, style, ...} (logical names) into the graph's feed dictionary. */
    feed(values) {
      const feed = {};
      for (const name of INPUT_NAMES) {
        if (values[name] === undefined) throw new Error(`no value for model input ${name}`);
        feed[inputs[name]] = values[name];
      }
      return feed;
    },
  };
}
