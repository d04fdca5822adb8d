/**
 * Reading a V8 .cpuprofile: self time per function, inclusive time per berth function, and time
 * per kind of code (berth, SQLite, HTTP, GC, …), with idle time left out.
 */
import * as fs from 'node:fs';
import { REPO } from './paths.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  fn: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  busyMs: number;
  byKind: FunctionTime[];
  topSelf: FunctionTime[];
  topBerthInclusive: FunctionTime[];
}

function shortUrl(url: string): string {
  return url.replace(`file://${REPO}/dist/`, '').replace(`file://${REPO}/`, '').replace(/^file:\/\//, '');
}

function nameOf(n: ProfileNode): string {
  const f = n.callFrame;
  if (!f.url) return f.functionName || '(anonymous)';
  return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
}

function kindOf(n: ProfileNode): string {
  const { url, functionName } = n.callFrame;
  if (!url) {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return 'garbage collector';
    if (functionName === '(program)') return 'V8/native (program)';
    return `native: ${functionName}`;
  }
  if (url.includes('/better-sqlite3/')) return 'SQLite (better-sqlite3)';
  if (url.includes('/zod/')) return 'zod validation';
  if (url.includes('/dist/src/')) return `berth ${shortUrl(url).replace(/^src\//, '').replace(/\/[^/]+$/, '')}`;
  if (/node:(_http|http|net|stream|internal\/http|internal\/streams|internal\/stream_base|internal\/net)/.test(url)) return 'node http/net/streams';
  if (/node:(child_process|internal\/child_process)/.test(url)) return 'node child_process';
  if (/node:(fs|internal\/fs)/.test(url)) return 'node fs';
  if (url.startsWith('node:')) return 'node other';
  return 'other';
}

/** Samples of the profiler restarting itself (the bench's preload) are not the daemon's work. */
function isProfilerOwn(id: number, byId: Map<number, ProfileNode>, parent: Map<number, number>): boolean {
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const url = byId.get(cur)!.callFrame.url;
    if (url.includes('/dist/bench/') || url === 'node:inspector') return true;
  }
  return false;
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const kinds = new Map<string, number>();
  let busy = 0;
  for (let k = 0; k < p.samples.length; k++) {
    const node = byId.get(p.samples[k]!);
    if (!node) continue;
    const dt = (p.timeDeltas[k] ?? 0) / 1000;
    const kind = kindOf(node);
    if (kind === '(idle)' || isProfilerOwn(node.id, byId, parent)) continue;
    busy += dt;
    kinds.set(kind, (kinds.get(kind) ?? 0) + dt);
    const name = nameOf(node);
    self.set(name, (self.get(name) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      if (!n.callFrame.url.includes('/dist/src/')) continue;
      const fn = nameOf(n);
      if (seen.has(fn)) continue;
      seen.add(fn);
      inclusive.set(fn, (inclusive.get(fn) ?? 0) + dt);
    }
  }
  const list = (m: Map<string, number>, n: number): FunctionTime[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([fn, ms]) => ({ fn, ms: Math.round(ms * 10) / 10, pct: Math.round((1000 * ms) / (busy || 1)) / 10 }));
  return {
    file: shortUrl(`file://${file}`),
    wallMs: Math.round((p.endTime - p.startTime) / 1000),
    busyMs: Math.round(busy),
    byKind: list(kinds, 20),
    topSelf: list(self, top),
    topBerthInclusive: list(inclusive, top),
  };
}
