// The request rules of the model package (sanet/request.py, sanet/stylizer.py working_size), as
// metadata.json publishes them: the page follows them instead of keeping its own copy.

/** The metadata.json schema this page reads (convert/contract.py SCHEMA_VERSION). */
export const SCHEMA_VERSION = 11;

/**
 * @typedef {{minSide: number, defaultMaxResolution: number, maxResolutionLimit: number}} Rules
 */

/** The request rules from metadata.json; throws, worded for the user, when they are missing. */
export function requestRules(metadata) {
  if (metadata?.schema_version !== SCHEMA_VERSION) {
    throw new Error(
      `its schema version is ${metadata?.schema_version ?? 'missing'}, this page reads ` +
        `version ${SCHEMA_VERSION}: convert the model again`,
    );
  }
  const { min_side, default_max_resolution, max_resolution_limit } = metadata.request ?? {};
  const rules = {
    minSide: min_side,
    defaultMaxResolution: default_max_resolution,
    maxResolutionLimit: max_resolution_limit,
  };
  for (const [name, value] of Object.entries(rules)) {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`its request rule ${name} is invalid`);
  }
  return rules;
}

/** Python's round(): halves go to the even neighbour. Sizes are positive. */
export function roundHalfEven(x) {
  const nearest = Math.round(x);
  return x % 1 === 0.5 && nearest % 2 !== 0 ? nearest - 1 : nearest;
}

/**
 * The size to compute at (sanet/stylizer.py working_size): longest side at most maxResolution
 * (0: no limit), then scaled up, as far as that limit allows, until the shortest side reaches
 * minSide. Only an image more elongated than maxResolution:minSide is stretched to fit both.
 * @returns {{height: number, width: number}}
 */
export function workingSize(height, width, maxResolution, { minSide }) {
  const longest = Math.max(height, width);
  const shortest = Math.min(height, width);
  let scale = maxResolution ? Math.min(1, maxResolution / longest) : 1;
  if (shortest * scale < minSide) {
    scale = minSide / shortest;
    if (maxResolution) scale = Math.min(scale, maxResolution / longest);
  }
  // At scale 1 this is the size itself, unless a side is under minSide (then stretched).
  return {
    height: Math.max(minSide, roundHalfEven(height * scale)),
    width: Math.max(minSide, roundHalfEven(width * scale)),
  };
}

/**
 * The style's working size (sanet/stylizer.py style_working_size, with -1 for its None): the
 * content's rule at maxResolution (-1); else scaled, up or down, to a longest side of
 * styleResolution (0: as given, by the content's rule without a limit).
 * @returns {{height: number, width: number}}
 */
export function styleWorkingSize(height, width, maxResolution, styleResolution, rules) {
  if (styleResolution < 0) return workingSize(height, width, maxResolution, rules);
  if (styleResolution === 0) return workingSize(height, width, 0, rules);
  const scale = styleResolution / Math.max(height, width);
  return {
    height: Math.max(rules.minSide, roundHalfEven(height * scale)),
    width: Math.max(rules.minSide, roundHalfEven(width * scale)),
  };
}
