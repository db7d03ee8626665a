// The directory model: NFSv3's GUARDED, EXCLUSIVE and UNCHECKED creates, removes, renames and
// lookups, open creates whose file id is learnt later, and the same under power loss. Hand-made
// histories, then histories of a simulated directory that loses unflushed changes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type CreateMode,
  checkLinearizable,
  explain,
  formatResult,
  type NamespaceInput,
  type NamespaceOutput,
  namespaceModel,
  type Operation,
  powerLossModel,
} from '../../src/check/index.js';
import { Builder } from './histories.js';

type Op = Operation<NamespaceInput, NamespaceOutput>;
const dir = namespaceModel();
const durable = powerLossModel(namespaceModel());
const create = (name: string, mode: CreateMode = 'guarded', verf?: string): NamespaceInput => ({
  f: 'create',
  name,
  mode,
  verf,
});
const remove = (name: string): NamespaceInput => ({ f: 'remove', name });
const rename = (from: string, to: string): NamespaceInput => ({ f: 'rename', from, to });
const lookup = (name: string): NamespaceInput => ({ f: 'lookup', name });
const id = (x: string): NamespaceOutput => ({ id: x });

const verdict = (h: readonly Op[]): string => checkLinearizable(dir, h).verdict;
const verdictPL = (h: readonly Op[]): string => checkLinearizable(durable, h).verdict;

test('a sequential directory history: create, lookup, rename, remove', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  const h = [
    b.ok(1, lookup('a'), 0, 1, 'noent'),
    b.ok(1, create('a'), 2, 3, id('1')),
    b.ok(1, lookup('a'), 4, 5, id('1')),
    b.ok(1, rename('a', 'b'), 6, 7, 'ok'),
    b.ok(1, lookup('a'), 8, 9, 'noent'),
    b.ok(1, lookup('b'), 10, 11, id('1')),
    b.ok(1, rename('a', 'c'), 12, 13, 'noent'),
    b.ok(1, remove('b'), 14, 15, 'ok'),
    b.ok(1, remove('b'), 16, 17, 'noent'),
  ];
  assert.equal(verdict(h), 'linearizable');
  for (const [i, wrong] of [
    [2, id('2')],
    [4, id('1')],
    [6, 'ok'],
    [7, 'noent'],
    [8, 'ok'],
  ] as const) {
    const bad = h.map((o, k) => (k === i ? { ...o, output: wrong } : o));
    assert.equal(verdict(bad), 'not-linearizable', `op ${i} answering ${JSON.stringify(wrong)}`);
  }
});

test('GUARDED: an existing name answers exist, and of concurrent creates exactly one wins', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  assert.equal(
    verdict([b.ok(1, create('a'), 0, 1, id('1')), b.ok(2, create('a'), 2, 3, 'exist')]),
    'linearizable',
  );
  assert.equal(
    verdict([b.ok(1, create('a'), 0, 1, id('1')), b.ok(2, create('a'), 2, 3, id('2'))]),
    'not-linearizable',
  );
  assert.equal(verdict([b.ok(1, create('a'), 0, 1, 'exist')]), 'not-linearizable');
  const race = (second: NamespaceOutput): Op[] => [
    b.ok(1, create('a'), 0, 5, id('1')),
    b.ok(2, create('a'), 1, 4, second),
    b.ok(3, create('a'), 2, 6, 'exist'),
  ];
  assert.equal(verdict(race('exist')), 'linearizable');
  const res = checkLinearizable(dir, race(id('2')));
  assert.equal(res.verdict, 'not-linearizable');
  const [e] = explain(res);
  assert.match(e.text, /create "a" guarded → id \d/);
  assert.match(e.text, /impossible from \{"a": \d\}/);
});

test('EXCLUSIVE: a retry with the same verifier answers the same file; another verifier gets exist', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  const first = (): Op => b.ok(1, create('a', 'exclusive', 'v1'), 0, 1, id('7'));
  assert.equal(verdict([first(), b.ok(1, create('a', 'exclusive', 'v1'), 2, 3, id('7'))]), 'linearizable');
  assert.equal(
    verdict([first(), b.ok(1, create('a', 'exclusive', 'v1'), 2, 3, id('8'))]),
    'not-linearizable',
  );
  assert.equal(
    verdict([first(), b.ok(1, create('a', 'exclusive', 'v1'), 2, 3, 'exist')]),
    'not-linearizable',
  );
  assert.equal(verdict([first(), b.ok(2, create('a', 'exclusive', 'v2'), 2, 3, 'exist')]), 'linearizable');
  assert.equal(
    verdict([first(), b.ok(2, create('a', 'exclusive', 'v2'), 2, 3, id('7'))]),
    'not-linearizable',
  );
  // A file another mode made has no verifier to match.
  assert.equal(
    verdict([b.ok(1, create('a'), 0, 1, id('7')), b.ok(2, create('a', 'exclusive', 'v1'), 2, 3, 'exist')]),
    'linearizable',
  );
  // The verifier stays with the file across a rename.
  assert.equal(
    verdict([
      first(),
      b.ok(1, rename('a', 'b'), 2, 3, 'ok'),
      b.ok(1, create('b', 'exclusive', 'v1'), 4, 5, id('7')),
    ]),
    'linearizable',
  );
});

test('UNCHECKED: an existing name answers its own file', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  const first = (): Op => b.ok(1, create('a'), 0, 1, id('7'));
  assert.equal(verdict([first(), b.ok(2, create('a', 'unchecked'), 2, 3, id('7'))]), 'linearizable');
  assert.equal(verdict([first(), b.ok(2, create('a', 'unchecked'), 2, 3, id('8'))]), 'not-linearizable');
  assert.equal(verdict([first(), b.ok(2, create('a', 'unchecked'), 2, 3, 'exist')]), 'not-linearizable');
  assert.equal(verdict([b.ok(2, create('a', 'unchecked'), 2, 3, id('8'))]), 'linearizable');
});

test('two names never hold one file id', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  assert.equal(
    verdict([b.ok(1, create('a'), 0, 1, id('7')), b.ok(1, create('b'), 2, 3, id('7'))]),
    'not-linearizable',
  );
  // Once the first name is gone its id may come back.
  assert.equal(
    verdict([
      b.ok(1, create('a'), 0, 1, id('7')),
      b.ok(1, remove('a'), 2, 3, 'ok'),
      b.ok(1, create('b'), 4, 5, id('7')),
    ]),
    'linearizable',
  );
});

test('rename onto an existing name replaces it; rename onto itself changes nothing', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  const base = (): Op[] => [
    b.ok(1, create('a'), 0, 1, id('1')),
    b.ok(1, create('b'), 2, 3, id('2')),
    b.ok(1, rename('a', 'b'), 4, 5, 'ok'),
  ];
  assert.equal(
    verdict([...base(), b.ok(1, lookup('b'), 6, 7, id('1')), b.ok(1, lookup('a'), 8, 9, 'noent')]),
    'linearizable',
  );
  assert.equal(verdict([...base(), b.ok(1, lookup('b'), 6, 7, id('2'))]), 'not-linearizable');
  assert.equal(
    verdict([
      b.ok(1, create('a'), 0, 1, id('1')),
      b.ok(1, rename('a', 'a'), 2, 3, 'ok'),
      b.ok(1, lookup('a'), 4, 5, id('1')),
    ]),
    'linearizable',
  );
});

test('an open create makes a file whose id a later reply tells, once', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  assert.equal(verdict([b.open(1, create('a'), 0), b.ok(2, lookup('a'), 5, 6, 'noent')]), 'linearizable');
  assert.equal(
    verdict([
      b.open(1, create('a'), 0),
      b.ok(2, lookup('a'), 5, 6, id('9')),
      b.ok(2, lookup('a'), 7, 8, id('9')),
    ]),
    'linearizable',
  );
  assert.equal(
    verdict([
      b.open(1, create('a'), 0),
      b.ok(2, lookup('a'), 5, 6, id('9')),
      b.ok(2, lookup('a'), 7, 8, id('4')),
    ]),
    'not-linearizable',
  );
  // The id it learns must not be one another name holds.
  assert.equal(
    verdict([
      b.ok(1, create('b'), 0, 1, id('9')),
      b.open(1, create('a'), 2),
      b.ok(2, lookup('a'), 5, 6, id('9')),
    ]),
    'not-linearizable',
  );
  // An EXCLUSIVE create that timed out, retried: the retry answers the file the first one made.
  assert.equal(
    verdict([
      b.open(1, create('a', 'exclusive', 'v1'), 0),
      b.ok(1, create('a', 'exclusive', 'v1'), 5, 6, id('3')),
      b.ok(2, create('a'), 7, 8, 'exist'),
      b.ok(2, lookup('a'), 9, 10, id('3')),
    ]),
    'linearizable',
  );
  // A GUARDED create that timed out and was retried may find its own file: exist.
  assert.equal(
    verdict([
      b.open(1, create('a'), 0),
      b.ok(1, create('a'), 5, 6, 'exist'),
      b.ok(1, lookup('a'), 7, 8, id('3')),
    ]),
    'linearizable',
  );
});

test('under power loss: an acknowledged change survives; an open one may vanish, but not after a kill -9', () => {
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  const acked = [b.ok(1, create('a'), 0, 1, id('1')), b.crash(2), b.ok(2, lookup('a'), 3, 4, 'noent')];
  assert.equal(verdictPL(acked), 'not-linearizable');
  const seenThenGone = (kind: 'power' | 'kill'): Op[] => [
    b.open(1, create('a'), 0),
    b.ok(2, lookup('a'), 1, 2, id('5')),
    b.crash(3, kind),
    b.ok(2, lookup('a'), 4, 5, 'noent'),
  ];
  assert.equal(verdictPL(seenThenGone('power')), 'linearizable');
  assert.equal(verdictPL(seenThenGone('kill')), 'not-linearizable');
  // An open remove seen, then undone by the power loss.
  assert.equal(
    verdictPL([
      b.ok(1, create('a'), 0, 1, id('1')),
      b.open(1, remove('a'), 2),
      b.ok(2, lookup('a'), 3, 4, 'noent'),
      b.crash(5),
      b.ok(2, lookup('a'), 6, 7, id('1')),
    ]),
    'linearizable',
  );
  // A lookup acknowledges nothing, though it learnt the file's id; a later create does.
  const learnt = (): Op[] => [b.open(1, create('a'), 0), b.ok(2, lookup('a'), 1, 2, id('5'))];
  assert.equal(verdictPL([...learnt(), b.crash(3), b.ok(2, lookup('a'), 4, 5, 'noent')]), 'linearizable');
  assert.equal(
    verdictPL([
      ...learnt(),
      b.ok(2, create('b'), 3, 4, id('6')),
      b.crash(5),
      b.ok(2, lookup('a'), 6, 7, 'noent'),
    ]),
    'not-linearizable',
  );
  // EXCLUSIVE is exactly-once across a power loss: the retry finds the stored verifier.
  assert.equal(
    verdictPL([
      b.ok(1, create('a', 'exclusive', 'v1'), 0, 1, id('1')),
      b.crash(2),
      b.ok(1, create('a', 'exclusive', 'v1'), 3, 4, id('1')),
    ]),
    'linearizable',
  );
});

/** A simulated directory on a node that keeps changes in memory until an acknowledgement flushes them. */
interface SimOp {
  kind: number;
  name: number;
  to: number;
  mode: number;
  verf: number;
  before: number;
  after: number;
  open: boolean;
  applied: boolean;
}
const simOpArb = fc.record({
  kind: fc.integer({ min: 0, max: 6 }),
  name: fc.integer({ min: 0, max: 2 }),
  to: fc.integer({ min: 0, max: 2 }),
  mode: fc.integer({ min: 0, max: 2 }),
  verf: fc.integer({ min: 0, max: 1 }),
  before: fc.integer({ min: 0, max: 25 }),
  after: fc.integer({ min: 0, max: 25 }),
  open: fc.boolean(),
  applied: fc.boolean(),
});
const modes: CreateMode[] = ['guarded', 'exclusive', 'unchecked'];
const names = ['a', 'b', 'c'];

function simulate(plan: readonly SimOp[], openCreates: boolean): Op[] {
  interface File {
    id: string;
    verf?: string;
  }
  const b = new Builder<NamespaceInput, NamespaceOutput>('d');
  let seen = new Map<string, File>();
  let flushed = new Map<string, File>();
  let nextFile = 0;
  return plan.map((p, i) => {
    const at = 10 * i + 5;
    if (p.kind >= 5) {
      if (p.kind === 5) seen = new Map(flushed);
      return b.crash(at, p.kind === 5 ? 'power' : 'kill');
    }
    const name = names[p.name];
    const input: NamespaceInput =
      p.kind === 0
        ? create(name, modes[p.mode], modes[p.mode] === 'exclusive' ? `v${p.verf}` : undefined)
        : p.kind === 1
          ? remove(name)
          : p.kind === 2
            ? rename(name, names[p.to])
            : lookup(name);
    const open = p.open && input.f !== 'lookup' && (openCreates || input.f !== 'create');
    let output: NamespaceOutput;
    const before = seen;
    if (!open || p.applied) {
      const next = new Map(seen);
      const file = seen.get(name);
      if (input.f === 'create') {
        if (file === undefined) {
          const made = { id: `f${nextFile++}`, verf: input.verf };
          next.set(name, made);
          output = id(made.id);
        } else if (input.mode === 'unchecked' || (input.verf !== undefined && file.verf === input.verf)) {
          output = id(file.id);
        } else {
          output = 'exist';
        }
      } else if (input.f === 'remove') {
        output = file === undefined ? 'noent' : 'ok';
        next.delete(name);
      } else if (input.f === 'rename') {
        output = file === undefined ? 'noent' : 'ok';
        if (file !== undefined && input.to !== name) {
          next.delete(name);
          next.set(input.to, file);
        }
      } else {
        output = file === undefined ? 'noent' : id(file.id);
      }
      seen = next;
      const changed = output === 'ok' || (input.f === 'create' && before.get(name) === undefined);
      if (!open && changed) flushed = new Map(seen);
    }
    return open ? b.open(i, input, at - p.before) : b.ok(i, input, at - p.before, at + p.after, output!);
  });
}

test('property: histories of a simulated directory that loses unflushed changes are accepted', () => {
  fc.assert(
    fc.property(fc.array(simOpArb, { minLength: 1, maxLength: 40 }), fc.boolean(), (plan, openCreates) => {
      const res = checkLinearizable(durable, simulate(plan, openCreates));
      assert.equal(res.verdict, 'linearizable', formatResult(res));
    }),
    { numRuns: 300 },
  );
});

test('property: a lookup answering an id no create returned is rejected', () => {
  fc.assert(
    fc.property(fc.array(simOpArb, { minLength: 1, maxLength: 40 }), fc.nat(), (plan, pick) => {
      // Open creates would leave ids unknown, and any id would then do.
      const h = simulate(plan, false);
      const found = h.filter((o) => o.outcome === 'ok' && o.input.f === 'lookup' && o.output !== 'noent');
      fc.pre(found.length > 0);
      const victim = found[pick % found.length];
      const res = checkLinearizable(
        durable,
        h.map((o) => (o === victim ? { ...o, output: id('never') } : o)),
      );
      assert.equal(res.verdict, 'not-linearizable');
    }),
    { numRuns: 300 },
  );
});
