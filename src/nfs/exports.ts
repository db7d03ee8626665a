/**
 * The exports configuration: which directories NFS clients may mount, from which networks, with
 * what access, and how their AUTH_SYS identities are squashed. The file format is JSON and is
 * documented in docs/EXPORTS.md; every mistake in it is reported with the file, the export and
 * the field, so an operator can fix it without reading this code.
 */
import { readFileSync } from 'node:fs';
import { CairnError } from '../errors.js';

/** MOUNT v3's MNTPATHLEN: a path a client could not even send is not worth exporting. */
export const MAX_EXPORT_PATH = 1024;
/** The conventional "nobody" uid and gid, as Linux's exports(5) uses them. */
export const DEFAULT_ANON_ID = 65534;

export type ExportAccess = 'ro' | 'rw';
export type Squash = 'none' | 'root' | 'all';

/** An AUTH_SYS identity: the caller's uid, primary gid and supplementary gids. */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
  readonly gids: readonly number[];
}

/**
 * A bad exports file (code EXPORTS_INVALID) or one that cannot be read (EXPORTS_UNREADABLE).
 * `field` is the path of the offending value, such as `exports[1].clients[0]`, or '' for the
 * file as a whole.
 */
export class ExportsConfigError extends CairnError {
  readonly source: string;
  readonly field: string;
  constructor(
    code: 'EXPORTS_INVALID' | 'EXPORTS_UNREADABLE',
    source: string,
    field: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(code, field === '' ? `${source}: ${detail}` : `${source}: ${field}: ${detail}`, options);
    this.source = source;
    this.field = field;
  }
}

// ---------------------------------------------------------------------------------------------
// Addresses and networks. Every address is held as a 128-bit integer, IPv4 addresses in their
// IPv4-mapped IPv6 form (::ffff:a.b.c.d), so that a dual-stack socket's ::ffff:10.0.2.2 and a
// plain 10.0.2.2 are the same client and match the same rules.

const V4_MAPPED = 0xffffn << 32n;
const ALL_ONES = (1n << 128n) - 1n;

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // No leading zeros: "010" means octal to some tools and decimal to others.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIPv6(text: string): bigint | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (s: string): string[] | undefined => (s === '' ? [] : s.split(':'));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  const all = [...head, ...tail];
  const words: bigint[] = [];
  for (let i = 0; i < all.length; i++) {
    const g = all[i];
    if (i === all.length - 1 && g.includes('.')) {
      const v4 = parseIPv4(g);
      if (v4 === undefined) return undefined;
      words.push(v4 >> 16n, v4 & 0xffffn);
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      words.push(BigInt(Number.parseInt(g, 16)));
    }
  }
  // A dotted quad may only end the address ("::ffff:1.2.3.4", not "1.2.3.4::").
  if (text.includes('.') && text.endsWith(':')) return undefined;
  let headWords = 0;
  for (const g of head) headWords += g.includes('.') ? 2 : 1;
  if (halves.length === 2) {
    if (words.length > 7) return undefined;
    const zeros = 8 - words.length;
    words.splice(headWords, 0, ...new Array<bigint>(zeros).fill(0n));
  } else if (words.length !== 8) {
    return undefined;
  }
  let v = 0n;
  for (const w of words) v = (v << 16n) | w;
  return v;
}

/** Parses an IPv4 or IPv6 address into its 128-bit IPv6 form; undefined when it is neither. */
export function parseAddress(text: string): bigint | undefined {
  const v4 = parseIPv4(text);
  if (v4 !== undefined) return V4_MAPPED | v4;
  return parseIPv6(text);
}

/** One allowed client network, as the 128-bit network address and the mask for its prefix. */
interface Network {
  readonly text: string;
  readonly base: bigint;
  readonly mask: bigint;
}

function maskOf(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL_ONES << BigInt(128 - prefix)) & ALL_ONES;
}

/** Parses `addr` or `addr/prefix`; returns a reason when it is not a network. */
function parseNetwork(text: string): Network | string {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const isV4 = parseIPv4(addrText) !== undefined;
  const addr = parseAddress(addrText);
  const notNetwork = `'${text}' is not an address or network`;
  if (addr === undefined) return notNetwork;
  const width = isV4 ? 32 : 128;
  let prefix = width;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return notNetwork;
    prefix = Number(p);
    if (prefix > width) return notNetwork;
  }
  const mask = maskOf(prefix + (128 - width));
  if ((addr & ~mask & ALL_ONES) !== 0n) {
    // A typo as often as not (10.0.2.1/24 for 10.0.2.0/24 or 10.0.2.1/32): refuse to guess.
    return `'${text}' has bits set past its /${prefix} prefix`;
  }
  return { text, base: addr, mask };
}

/**
 * The address a socket reports for a client, stripped of any IPv6 zone (fe80::1%eth0), so that
 * it can be matched against networks. Undefined when it is not an address.
 */
function clientAddress(text: string): bigint | undefined {
  const pct = text.indexOf('%');
  return parseAddress(pct < 0 ? text : text.slice(0, pct));
}

// ---------------------------------------------------------------------------------------------

const MAX_DECIDED = 4096;

/** One export, validated. */
export class Export {
  readonly path: string;
  readonly id: number;
  readonly access: ExportAccess;
  /** The client networks exactly as configured ("*" for any). */
  readonly clients: readonly string[];
  readonly squash: Squash;
  readonly anonuid: number;
  readonly anongid: number;
  private readonly anyClient: boolean;
  private readonly networks: readonly Network[];
  /**
   * Answers already given, by address text: every NFS call asks, a server has few clients, and
   * parsing an address into a 128-bit integer costs far more than a lookup.
   */
  private readonly decided = new Map<string, boolean>();

  /** @internal Built by parseExports and defaultExports, which validate every field first. */
  constructor(fields: {
    path: string;
    id: number;
    access: ExportAccess;
    clients: readonly string[];
    squash: Squash;
    anonuid: number;
    anongid: number;
  }) {
    this.path = fields.path;
    this.id = fields.id;
    this.access = fields.access;
    this.clients = [...fields.clients];
    this.squash = fields.squash;
    this.anonuid = fields.anonuid;
    this.anongid = fields.anongid;
    this.anyClient = fields.clients.includes('*');
    const nets: Network[] = [];
    for (const c of fields.clients) {
      if (c === '*') continue;
      const n = parseNetwork(c);
      if (typeof n === 'string') throw new Error(`internal: unvalidated client network ${c}`);
      nets.push(n);
    }
    this.networks = nets;
  }

  get readOnly(): boolean {
    return this.access === 'ro';
  }

  /**
   * Whether a client at `address` (as a socket reports it: IPv4, IPv6, IPv4-mapped IPv6, or
   * IPv6 with a zone) may use this export. An address that does not parse is refused.
   */
  allows(address: string): boolean {
    let ok = this.decided.get(address);
    if (ok === undefined) {
      ok = this.decide(address);
      // Bounded, so that a flood of spoofed UDP sources cannot grow it without limit.
      if (this.decided.size >= MAX_DECIDED) this.decided.clear();
      this.decided.set(address, ok);
    }
    return ok;
  }

  private decide(address: string): boolean {
    const a = clientAddress(address);
    if (a === undefined) return false;
    if (this.anyClient) return true;
    for (const n of this.networks) if ((a & n.mask) === n.base) return true;
    return false;
  }

  /** The identity a caller acts with on this export, after squashing. */
  identity(cred: Identity): Identity {
    switch (this.squash) {
      case 'none':
        return { uid: cred.uid, gid: cred.gid, gids: [...cred.gids] };
      case 'root':
        return {
          uid: cred.uid === 0 ? this.anonuid : cred.uid,
          gid: cred.gid === 0 ? this.anongid : cred.gid,
          gids: cred.gids.filter((g) => g !== 0),
        };
      case 'all':
        return this.anonymous();
    }
  }

  /** The identity of a caller without AUTH_SYS credentials (AUTH_NONE), and of everyone under all-squash. */
  anonymous(): Identity {
    return { uid: this.anonuid, gid: this.anongid, gids: [] };
  }

  toJSON(): object {
    return {
      path: this.path,
      id: this.id,
      access: this.access,
      clients: this.clients,
      squash: this.squash,
      anonuid: this.anonuid,
      anongid: this.anongid,
    };
  }
}

/** A validated set of exports, looked up by the path clients mount or by the id in file handles. */
export class Exports {
  private readonly byPath = new Map<string, Export>();
  private readonly ids = new Map<number, Export>();
  private readonly all: readonly Export[];

  constructor(exports: readonly Export[]) {
    for (const e of exports) {
      if (this.byPath.has(e.path)) throw new Error(`internal: duplicate export path ${e.path}`);
      if (this.ids.has(e.id)) throw new Error(`internal: duplicate export id ${e.id}`);
      this.byPath.set(e.path, e);
      this.ids.set(e.id, e);
    }
    this.all = [...exports];
  }

  /** The export mounted as `path` (normalised first, so "/data/" finds "/data"); undefined if none. */
  find(path: string): Export | undefined {
    const p = normalisePath(path);
    return 'path' in p ? this.byPath.get(p.path) : undefined;
  }

  /**
   * The export containing `path` with the longest matching path, and the names below it
   * ("/data/a/b" gives the "/data" export and ["a", "b"]), for servers that allow mounting a
   * directory inside an export. Undefined if no export contains it or the path is malformed.
   */
  resolve(path: string): { export: Export; rest: string[] } | undefined {
    const p = normalisePath(path);
    if (!('path' in p)) return undefined;
    const names = p.path === '/' ? [] : p.path.slice(1).split('/');
    for (let n = names.length; n >= 0; n--) {
      const e = this.byPath.get(n === 0 ? '/' : `/${names.slice(0, n).join('/')}`);
      if (e) return { export: e, rest: names.slice(n) };
    }
    return undefined;
  }

  byId(id: number): Export | undefined {
    return this.ids.get(id);
  }

  /** Every export in the order of the file (MOUNT's EXPORT procedure lists them so). */
  list(): readonly Export[] {
    return this.all;
  }
}

/**
 * Normalises an export path: collapses repeated slashes and drops a trailing one. Returns the
 * path, or the reason it is not acceptable.
 */
function normalisePath(path: string): { path: string } | { error: string } {
  if (path.length === 0 || path[0] !== '/') return { error: `'${path}' must start with '/'` };
  if (Buffer.byteLength(path) > MAX_EXPORT_PATH) return { error: `is longer than ${MAX_EXPORT_PATH} bytes` };
  if (path.includes('\0')) return { error: 'contains a NUL character' };
  const names = path.split('/').filter((n) => n !== '');
  for (const n of names) {
    // Resolving '..' here could quietly export a different directory than the operator meant.
    if (n === '.' || n === '..') return { error: `'${path}' contains '${n}'` };
  }
  return { path: `/${names.join('/')}` };
}

const EXPORT_FIELDS = new Set(['path', 'id', 'access', 'clients', 'squash', 'anonuid', 'anongid', 'comment']);
const TOP_FIELDS = new Set(['exports', 'comment']);
const MAX_ID = 0xffff;
const MAX_UINT32 = 0xffffffff;

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Parses and validates the text of an exports file; `source` names it in error messages. */
export function parseExports(text: string, source: string): Exports {
  const invalid = (field: string, detail: string) =>
    new ExportsConfigError('EXPORTS_INVALID', source, field, detail);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ExportsConfigError('EXPORTS_INVALID', source, '', `not valid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw invalid('', `must be a JSON object with an "exports" array, not ${describe(doc)}`);
  }
  const top = doc as Record<string, unknown>;
  for (const k of Object.keys(top)) if (!TOP_FIELDS.has(k)) throw invalid(k, 'is not a known field');
  if (top.comment !== undefined && typeof top.comment !== 'string')
    throw invalid('comment', 'must be a string');
  const list = top.exports;
  if (!Array.isArray(list)) throw invalid('exports', `must be an array, not ${describe(list)}`);
  if (list.length === 0) throw invalid('exports', 'must list at least one export');

  const out: Export[] = [];
  const paths = new Map<string, number>();
  const ids = new Map<number, number>();
  for (const [i, raw] of list.entries()) {
    const at = `exports[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw invalid(at, `must be an object, not ${describe(raw)}`);
    }
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (!EXPORT_FIELDS.has(k)) throw invalid(`${at}.${k}`, 'is not a known field');
    if (e.comment !== undefined && typeof e.comment !== 'string')
      throw invalid(`${at}.comment`, 'must be a string');

    if (e.path === undefined) throw invalid(`${at}.path`, 'is required');
    if (typeof e.path !== 'string') throw invalid(`${at}.path`, `must be a string, not ${describe(e.path)}`);
    const norm = normalisePath(e.path);
    if ('error' in norm) throw invalid(`${at}.path`, norm.error);
    const path = norm.path;
    const samePath = paths.get(path);
    if (samePath !== undefined)
      throw invalid(`${at}.path`, `'${path}' is already exported by exports[${samePath}]`);
    paths.set(path, i);

    if (e.id === undefined) throw invalid(`${at}.id`, 'is required');
    if (typeof e.id !== 'number' || !Number.isInteger(e.id) || e.id < 1 || e.id > MAX_ID) {
      throw invalid(`${at}.id`, `must be an integer from 1 to ${MAX_ID}, not ${describe(e.id)}`);
    }
    const id = e.id as number;
    const sameId = ids.get(id);
    if (sameId !== undefined) throw invalid(`${at}.id`, `${id} is already used by exports[${sameId}]`);
    ids.set(id, i);

    const access = e.access === undefined ? 'ro' : e.access;
    if (access !== 'ro' && access !== 'rw')
      throw invalid(`${at}.access`, `must be "ro" or "rw", not ${describe(access)}`);

    if (e.clients === undefined) throw invalid(`${at}.clients`, 'is required (use ["*"] for any client)');
    if (!Array.isArray(e.clients))
      throw invalid(`${at}.clients`, `must be an array, not ${describe(e.clients)}`);
    if (e.clients.length === 0)
      throw invalid(`${at}.clients`, 'must list at least one network (use ["*"] for any client)');
    for (const [j, c] of (e.clients as unknown[]).entries()) {
      const cat = `${at}.clients[${j}]`;
      if (typeof c !== 'string') throw invalid(cat, `must be a string, not ${describe(c)}`);
      if (c === '*') continue;
      const n = parseNetwork(c as string);
      if (typeof n === 'string') throw invalid(cat, n);
    }

    const squash = e.squash === undefined ? 'root' : e.squash;
    if (squash !== 'none' && squash !== 'root' && squash !== 'all') {
      throw invalid(`${at}.squash`, `must be "none", "root" or "all", not ${describe(squash)}`);
    }
    const anon = (field: 'anonuid' | 'anongid'): number => {
      const v = e[field] === undefined ? DEFAULT_ANON_ID : e[field];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_UINT32) {
        throw invalid(`${at}.${field}`, `must be an integer from 0 to ${MAX_UINT32}, not ${describe(v)}`);
      }
      return v as number;
    };
    out.push(
      new Export({
        path,
        id,
        access: access as ExportAccess,
        clients: e.clients as string[],
        squash: squash as Squash,
        anonuid: anon('anonuid'),
        anongid: anon('anongid'),
      }),
    );
  }
  return new Exports(out);
}

/** Reads and validates an exports file. */
export function loadExports(file: string): Exports {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ExportsConfigError('EXPORTS_UNREADABLE', file, '', `cannot read: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return parseExports(text, file);
}

/**
 * The exports used when no file is given: "/export" (id 1), read-write, to loopback clients
 * only, without squashing — a node on a laptop, safe because nobody else can reach it. Not "/":
 * libnfs URLs (nfs://host/export/file) cannot name a root export.
 */
export function defaultExports(): Exports {
  return new Exports([
    new Export({
      path: '/export',
      id: 1,
      access: 'rw',
      clients: ['127.0.0.0/8', '::1'],
      squash: 'none',
      anonuid: DEFAULT_ANON_ID,
      anongid: DEFAULT_ANON_ID,
    }),
  ]);
}
