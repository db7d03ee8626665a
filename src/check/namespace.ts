/**
 * A sequential model of one directory, for the linearizability checker (key = the directory):
 * names mapped to files, with NFSv3's three kinds of CREATE (docs/CONSISTENCY.md). Wrap it in
 * `powerLossModel` to allow what a power loss may take.
 */
import type { Model } from './models.js';

/** NFSv3 CREATE's modes: GUARDED, EXCLUSIVE (with a verifier), UNCHECKED. */
export type CreateMode = 'guarded' | 'exclusive' | 'unchecked';

export type NamespaceInput =
  | { readonly f: 'create'; readonly name: string; readonly mode: CreateMode; readonly verf?: string }
  | { readonly f: 'remove'; readonly name: string }
  | { readonly f: 'rename'; readonly from: string; readonly to: string }
  | { readonly f: 'lookup'; readonly name: string };

/**
 * create → `{ id }` (the file's fileid) or `'exist'`; remove and rename → `'ok'` or `'noent'`;
 * lookup → `{ id }` or `'noent'`.
 */
export type NamespaceOutput = { readonly id: string } | 'exist' | 'ok' | 'noent';

/**
 * A file the directory names. `id` is undefined while unknown: the file was made by a create
 * whose reply never came, so any id is possible until a later reply names it.
 */
export interface DirEntry {
  readonly id: string | undefined;
  /** The verifier of the EXCLUSIVE create that made it. */
  readonly verf?: string;
}

export type Directory = ReadonlyMap<string, DirEntry>;

const isId = (o: NamespaceOutput | undefined): o is { readonly id: string } =>
  typeof o === 'object' && o !== null && typeof o.id === 'string';

function set(dir: Directory, name: string, entry: DirEntry): Directory {
  const out = new Map(dir);
  out.set(name, entry);
  return out;
}

function without(dir: Directory, name: string): Directory {
  const out = new Map(dir);
  out.delete(name);
  return out;
}

/** A name in one directory holds one file, so no two names hold the same id. */
const held = (dir: Directory, id: string): boolean => {
  for (const e of dir.values()) if (e.id === id) return true;
  return false;
};

/** A reply names the file `name` holds: the same id, or a first id for a file whose id was unknown. */
function learn(dir: Directory, name: string, entry: DirEntry, id: string): Directory | undefined {
  if (entry.id === id) return dir;
  if (entry.id !== undefined || held(dir, id)) return undefined;
  return set(dir, name, { ...entry, id });
}

const show = (s: string): string => JSON.stringify(s);
const showOutput = (o: NamespaceOutput | undefined): string =>
  o === undefined ? '?' : isId(o) ? `id ${o.id}` : o;

/**
 * The rules (RFC 1813 and docs/CONSISTENCY.md): GUARDED on an existing name answers exist;
 * EXCLUSIVE on a name whose file that same verifier created is a retry and answers that file,
 * with another verifier (or on a file not made by EXCLUSIVE) exist; UNCHECKED on an existing name
 * answers the existing file. A new file's id must not be one another name holds. Remove and
 * rename answer noent for a missing name; rename onto an existing name replaces it, and a rename
 * of a name onto itself changes nothing.
 */
export function namespaceModel(): Model<Directory, NamespaceInput, NamespaceOutput> {
  return {
    name: 'directory',
    init: () => new Map(),
    step(dir, input, output) {
      switch (input.f) {
        case 'lookup': {
          const e = dir.get(input.name);
          if (output === undefined) return dir;
          if (e === undefined) return output === 'noent' ? dir : undefined;
          return isId(output) ? learn(dir, input.name, e, output.id) : undefined;
        }
        case 'create': {
          const e = dir.get(input.name);
          const verf = input.mode === 'exclusive' ? input.verf : undefined;
          if (e === undefined) {
            if (output === undefined) return set(dir, input.name, { id: undefined, verf });
            if (!isId(output) || held(dir, output.id)) return undefined;
            return set(dir, input.name, { id: output.id, verf });
          }
          const answersFile = input.mode === 'unchecked' || (verf !== undefined && e.verf === verf);
          if (output === undefined) return dir;
          if (!answersFile) return output === 'exist' ? dir : undefined;
          return isId(output) ? learn(dir, input.name, e, output.id) : undefined;
        }
        case 'remove': {
          const e = dir.get(input.name);
          if (output === undefined) return e === undefined ? dir : without(dir, input.name);
          if (output === 'noent') return e === undefined ? dir : undefined;
          return output === 'ok' && e !== undefined ? without(dir, input.name) : undefined;
        }
        case 'rename': {
          const e = dir.get(input.from);
          const moved =
            e === undefined || input.from === input.to ? dir : set(without(dir, input.from), input.to, e);
          if (output === undefined) return moved;
          if (output === 'noent') return e === undefined ? dir : undefined;
          return output === 'ok' && e !== undefined ? moved : undefined;
        }
      }
    },
    readOnly: (input) => input.f === 'lookup',
    hash(dir) {
      const names = [...dir.keys()].sort();
      return JSON.stringify(names.map((n) => [n, dir.get(n)!.id ?? null, dir.get(n)!.verf ?? null]));
    },
    describeOp(input, output) {
      const out = showOutput(output);
      switch (input.f) {
        case 'lookup':
          return `lookup ${show(input.name)} → ${out}`;
        case 'create':
          return `create ${show(input.name)} ${input.mode}${input.verf === undefined ? '' : ` verf ${input.verf}`} → ${out}`;
        case 'remove':
          return `remove ${show(input.name)} → ${out}`;
        case 'rename':
          return `rename ${show(input.from)} to ${show(input.to)} → ${out}`;
      }
    },
    describeState(dir) {
      if (dir.size === 0) return 'no names';
      const names = [...dir.keys()].sort();
      const entries = names.map((n) => {
        const e = dir.get(n)!;
        return `${show(n)}: ${e.id ?? 'id unknown'}${e.verf === undefined ? '' : ` (verf ${e.verf})`}`;
      });
      return `{${entries.join(', ')}}`;
    },
  };
}
