/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- rpc --profile DIR` for the
 * servers): the functions with the most self time and the most inclusive time, so a benchmark's
 * hot path can be read without a browser.
 *
 *   node dist/src/bench/profile.js FILE.cpuprofile [--top N] [--filter TEXT] [--callers NAME]
 *
 * `--filter` keeps only functions whose name or file contains TEXT in the inclusive list (for
 * example `dist/src` to see Cairn's own code). `--callers NAME` shows instead which call stacks
 * the time of the functions named NAME comes from.
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  selfMs: number;
  totalMs: number;
}

function frameName(f: CallFrame): string {
  let file = f.url;
  if (file.startsWith('file://')) {
    try {
      file = relative(process.cwd(), fileURLToPath(file));
    } catch {
      // keep the URL
    }
  }
  const fn = f.functionName || '(anonymous)';
  return file ? `${fn} ${file}:${f.lineNumber + 1}` : fn;
}

/** Self and inclusive time per function (recursion counted once per sample). */
/**
 * Where the time of functions whose name contains `name` comes from: inclusive time of those
 * functions, attributed to the call stacks (up to `depth` callers) that led to them.
 */
export function callers(profile: CpuProfile, name: string, depth = 3): { stack: string; ms: number }[] {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const out = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    // Find the outermost frame matching `name` on this sample's stack.
    let id: number | undefined = profile.samples[i];
    let match: number | undefined;
    while (id !== undefined) {
      const node = byId.get(id);
      if (!node) break;
      if (frameName(node.callFrame).includes(name)) match = id;
      id = parent.get(id);
    }
    if (match === undefined) continue;
    const stack: string[] = [];
    id = match;
    for (let d = 0; d <= depth && id !== undefined; d++) {
      const node = byId.get(id);
      if (!node) break;
      stack.push(frameName(node.callFrame));
      id = parent.get(id);
    }
    const key = stack.join(' < ');
    out.set(key, (out.get(key) ?? 0) + dt);
  }
  return [...out.entries()].map(([stack, ms]) => ({ stack, ms })).sort((a, b) => b.ms - a.ms);
}

export function summarise(profile: CpuProfile): { totalMs: number; functions: FunctionTime[] } {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let sum = 0;
  const seen = new Set<string>();
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute it to sample i, as DevTools does.
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    sum += dt;
    let id: number | undefined = profile.samples[i];
    const leaf = byId.get(id);
    if (!leaf) continue;
    const leafName = frameName(leaf.callFrame);
    self.set(leafName, (self.get(leafName) ?? 0) + dt);
    seen.clear();
    while (id !== undefined) {
      const node = byId.get(id);
      if (!node) break;
      const name = frameName(node.callFrame);
      if (!seen.has(name)) {
        seen.add(name);
        total.set(name, (total.get(name) ?? 0) + dt);
      }
      id = parent.get(id);
    }
  }
  const functions = [...total.entries()].map(([name, totalMs]) => ({
    name,
    totalMs,
    selfMs: self.get(name) ?? 0,
  }));
  return { totalMs: sum, functions };
}

function main(): void {
  const args = process.argv.slice(2);
  let top = 30;
  let filter = '';
  let callersOf = '';
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--top') top = Number(args[++i]);
    else if (args[i] === '--filter') filter = args[++i] ?? '';
    else if (args[i] === '--callers') callersOf = args[++i] ?? '';
    else files.push(args[i]);
  }
  if (files.length === 0) {
    console.error(
      'usage: node dist/src/bench/profile.js FILE.cpuprofile [--top N] [--filter TEXT] [--callers NAME]',
    );
    process.exit(2);
  }
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    if (callersOf) {
      console.log(`${file}: callers of ${callersOf}`);
      for (const c of callers(profile, callersOf).slice(0, top)) {
        console.log(`  ${c.ms.toFixed(0).padStart(7)} ms  ${c.stack}`);
      }
      continue;
    }
    const { totalMs, functions } = summarise(profile);
    const pct = (ms: number) => `${((100 * ms) / totalMs).toFixed(1).padStart(5)}%`;
    console.log(`${file}: ${totalMs.toFixed(0)} ms sampled`);
    console.log('  self time:');
    for (const f of [...functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, top)) {
      console.log(`  ${pct(f.selfMs)} ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}`);
    }
    console.log(`  inclusive time${filter ? ` (${filter})` : ''}:`);
    for (const f of [...functions]
      .filter((x) => filter === '' || x.name.includes(filter))
      .sort((a, b) => b.totalMs - a.totalMs)
      .slice(0, top)) {
      console.log(`  ${pct(f.totalMs)} ${f.totalMs.toFixed(0).padStart(7)} ms  ${f.name}`);
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) main();
