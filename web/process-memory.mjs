// Peak resident memory of the Chromium processes this Node process launched (Linux /proc):
// the bench's records (bench/tfjs/run.mjs) and the browser tests' bound on the page's renderer
// (web/tests/fullres.test.mjs) read it the same way.

import fs from 'node:fs';

/** Descendants of this Node process: the browsers it launched and their processes. */
export function children() {
  const parent = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(entry), ppid);
    } catch {
      /* gone */
    }
  }
  const found = [];
  const frontier = [process.pid];
  while (frontier.length) {
    const pid = frontier.pop();
    for (const [child, ppid] of parent)
      if (ppid === pid) {
        found.push(child);
        frontier.push(child);
      }
  }
  return found;
}

function kind(pid) {
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const match = cmdline.match(/--type=([a-z-]+)/);
    if (match) return match[1] === 'gpu-process' ? 'gpu' : match[1];
    return cmdline.includes('chrom') ? 'browser' : 'other';
  } catch {
    return 'gone';
  }
}

function statusKb(pid, field) {
  try {
    const match = fs
      .readFileSync(`/proc/${pid}/status`, 'utf8')
      .match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

function measuredProcesses() {
  return children().filter((pid) => ['renderer', 'gpu'].includes(kind(pid)));
}

/** Resets the renderers' and the GPU process's peak (VmHWM) to their resident size now; false
 * where the kernel does not allow it. */
export function resetPeaks() {
  let ok = true;
  for (const pid of measuredProcesses()) {
    try {
      fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/**
 * Peak MB since the last reset, summed by kind (`by_process`) and of each kind's largest process
 * (`largest_by_process`). In the bench's fresh context the largest renderer is the page's own
 * (its worker and the wasm heap live there); the others are Chromium's spare renderers, a few
 * hundred MB between them that the page does not use.
 */
export function peaks() {
  const byKind = {};
  const largest = {};
  for (const pid of measuredProcesses()) {
    const k = kind(pid);
    const mb = statusKb(pid, 'VmHWM') / 1024;
    byKind[k] = (byKind[k] ?? 0) + mb;
    largest[k] = Math.max(largest[k] ?? 0, mb);
  }
  const total = Object.values(byKind).reduce((a, b) => a + b, 0);
  return {
    peak_mb: Math.round(total * 10) / 10,
    by_process: byKind,
    largest_by_process: largest,
  };
}

/**
 * Starts watching the renderers (their peaks reset); the returned function gives the peak MB
 * of the one that grew the most since: the page that ran, beside others left open.
 */
export function watchRenderer() {
  resetPeaks();
  const renderers = () => measuredProcesses().filter((pid) => kind(pid) === 'renderer');
  const start = new Map(renderers().map((pid) => [pid, statusKb(pid, 'VmRSS') / 1024]));
  return () => {
    const each = renderers().map((pid) => {
      const mb = statusKb(pid, 'VmHWM') / 1024;
      return { mb, grown: mb - (start.get(pid) ?? 0) };
    });
    return Math.round(each.reduce((a, b) => (b.grown > a.grown ? b : a)).mb);
  };
}
