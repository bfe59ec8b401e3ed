// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function
// and inclusive time per function, restricted to an optional time window.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

function label(cf) {
  const name = cf.functionName || '(anonymous)';
  if (!cf.url) return name;
  return `${name} ${basename(cf.url)}:${cf.lineNumber + 1}`;
}

/**
 * Returns { totalMs, self: [{fn, ms, pct}], inclusive: [{fn, ms, pct}] } sorted by ms.
 * Samples outside [fromUs, toUs) (profile-relative microseconds) are ignored.
 */
export function summarizeProfile(file, { top = 15, fromUs = 0, toUs = Infinity } = {}) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const incl = new Map();
  let t = 0;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    const next = prof.timeDeltas[i + 1] ?? dt;
    if (t < fromUs || t >= toUs) continue;
    const node = byId.get(prof.samples[i]);
    const fn = label(node.callFrame);
    if (fn.startsWith('(idle)')) continue;
    const us = next;
    total += us;
    self.set(fn, (self.get(fn) ?? 0) + us);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const f = label(byId.get(id).callFrame);
      if (seen.has(f)) continue;
      seen.add(f);
      incl.set(f, (incl.get(f) ?? 0) + us);
    }
  }
  const rank = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: us / 1000, pct: total ? (100 * us) / total : 0 }));
  return { totalMs: total / 1000, self: rank(self), inclusive: rank(incl) };
}
