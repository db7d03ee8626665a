/**
 * Workloads by name: `NAME` is the module test/nemesis/workloads/NAME.ts, which exports
 * `create(): Workload` (test/nemesis/workload.ts). Loaded by URL, so a workload is added by adding
 * its file, with no list to edit.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { NemesisError } from '../base.js';
import type { Workload } from '../workload.js';

const HELPERS = new Set(['index', 'session']);

/** The names of the workloads there are. */
export function workloadNames(): string[] {
  return readdirSync(import.meta.dirname)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .filter((n) => !HELPERS.has(n))
    .sort();
}

export async function loadWorkload(name: string): Promise<Workload> {
  const file = join(import.meta.dirname, `${name}.js`);
  if (!/^[a-z0-9-]+$/.test(name) || HELPERS.has(name) || !existsSync(file))
    throw new NemesisError(`unknown workload '${name}' (there are: ${workloadNames().join(', ')})`);
  const mod = (await import(pathToFileURL(file).href)) as { create?: () => Workload };
  if (typeof mod.create !== 'function') throw new NemesisError(`workload module ${name} exports no create()`);
  const w = mod.create();
  if (w.name !== name) throw new NemesisError(`workload module ${name} creates a workload named ${w.name}`);
  return w;
}
