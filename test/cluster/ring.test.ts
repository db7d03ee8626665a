import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  inRange,
  keyPosition,
  type Layout,
  type LayoutNode,
  movedRanges,
  Ring,
  RingError,
} from '../../src/cluster/ring.js';
import { balance, movedFraction, randomLayout } from '../../src/cluster/ring-stats.js';

const SMALL = { vnodesPerWeight: 16 };

/** Layouts of 1..24 nodes, some weights 0, zones from a small alphabet or none at all. */
const layoutArb = fc
  .record({
    n: fc.integer({ min: 1, max: 24 }),
    zoned: fc.constantFrom('none', 'all', 'some'),
    zones: fc.integer({ min: 1, max: 5 }),
    seed: fc.integer(),
    weights: fc.array(fc.constantFrom(0, 0.5, 1, 1, 1, 2), { minLength: 24, maxLength: 24 }),
  })
  .map(({ n, zoned, zones, seed, weights }) => {
    const nodes: LayoutNode[] = [];
    for (let i = 0; i < n; i++) {
      const id = `n${seed & 0xffff}-${i}`;
      const hasZone = zoned === 'all' || (zoned === 'some' && i % 2 === 0);
      nodes.push(
        hasZone ? { id, weight: weights[i], zone: `z${(i * 7 + seed) % zones}` } : { id, weight: weights[i] },
      );
    }
    return { version: 1, nodes } as Layout;
  });

function zoneOf(layout: Layout, id: string): string {
  const n = layout.nodes.find((x) => x.id === id)!;
  return n.zone === undefined ? `node:${id}` : `zone:${n.zone}`;
}

function liveZones(layout: Layout): number {
  return new Set(layout.nodes.filter((n) => n.weight > 0).map((n) => zoneOf(layout, n.id))).size;
}

test('a preference list has min(R, nodes) distinct nodes in min(R, zones) distinct zones (property)', () => {
  fc.assert(
    fc.property(
      layoutArb,
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.string(), { minLength: 1, maxLength: 20 }),
      (layout, r, keys) => {
        const ring = new Ring(layout, SMALL);
        const live = layout.nodes.filter((n) => n.weight > 0);
        for (const key of keys) {
          const list = ring.preferenceList(key, r);
          assert.equal(list.length, Math.min(r, live.length));
          assert.equal(new Set(list).size, list.length, 'distinct nodes');
          for (const id of list)
            assert.ok(
              live.some((n) => n.id === id),
              'only nodes with weight',
            );
          const zones = new Set(list.map((id) => zoneOf(layout, id)));
          assert.equal(zones.size, Math.min(r, liveZones(layout), list.length), 'zone diversity');
          // The primary is Chord's successor of the key: the owner of the first token at or after it.
          if (list.length > 0) {
            const i = ring.successorIndex(keyPosition(key));
            assert.equal(list[0], ring.nodeIds[ring.owners[i]]);
          }
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('placement depends on the layout, not on the order its nodes are listed in (property)', () => {
  fc.assert(
    fc.property(layoutArb, fc.integer(), (layout, seed) => {
      const shuffled = [...layout.nodes].sort(
        (a, b) => ((a.id.length * 31 + seed) % 7) - ((b.id.length * 17) % 5) || (a.id < b.id ? 1 : -1),
      );
      const a = new Ring(layout, SMALL);
      const b = new Ring({ version: 2, nodes: shuffled }, SMALL);
      for (let k = 0; k < 30; k++)
        assert.deepEqual(a.preferenceList(`k${k}`, 3), b.preferenceList(`k${k}`, 3));
    }),
    { numRuns: 60 },
  );
});

test('with equal weights and the default virtual nodes, no node holds more than 1.3x its fair share (3..100 nodes)', () => {
  for (const n of [3, 5, 10, 30, 60, 100]) {
    for (let seed = 1; seed <= 3; seed++) {
      const ring = new Ring(randomLayout(n, seed * 7919 + n));
      const one = balance(ring, 1);
      assert.ok(one.maxOverFair <= 1.3, `N=${n} seed=${seed}: max/fair ${one.maxOverFair.toFixed(3)} (R=1)`);
      assert.ok(one.minOverFair >= 0.7, `N=${n} seed=${seed}: min/fair ${one.minOverFair.toFixed(3)} (R=1)`);
      const three = balance(ring, 3);
      assert.ok(
        three.maxOverFair <= 1.25,
        `N=${n} seed=${seed}: max/fair ${three.maxOverFair.toFixed(3)} (R=3)`,
      );
    }
  }
});

test('with unequal weights, shares are proportional to weight within the same bound', () => {
  for (const n of [4, 12, 40]) {
    const weights = [0.5, 1, 2, 4];
    const ring = new Ring(randomLayout(n, 31 * n, (i) => weights[i % weights.length]));
    const b = balance(ring, 1);
    assert.ok(b.maxOverFair <= 1.3 && b.minOverFair >= 0.7, `N=${n}: ${b.minOverFair}..${b.maxOverFair}`);
    // A weight-4 node really takes about 8 times a weight-0.5 node's share.
    const shares = ring.ownership(1);
    const heavy = ring.layout.nodes.filter((x) => x.weight === 4).map((x) => shares.get(x.id)!);
    const light = ring.layout.nodes.filter((x) => x.weight === 0.5).map((x) => shares.get(x.id)!);
    const ratio =
      heavy.reduce((a, x) => a + x, 0) / heavy.length / (light.reduce((a, x) => a + x, 0) / light.length);
    assert.ok(ratio > 6 && ratio < 10.5, `weight 4 vs 0.5 share ratio ${ratio}`);
  }
});

test('adding one node to N moves about 1/(N+1) of the keys, and only to the new node', () => {
  for (const n of [3, 10, 50]) {
    const before = randomLayout(n, 1000 + n);
    const extra = randomLayout(1, 5000 + n).nodes[0];
    const after: Layout = { version: 2, nodes: [...before.nodes, extra] };
    const a = new Ring(before);
    const b = new Ring(after);
    const moved = movedFraction(a, b, 1);
    const expected = 1 / (n + 1);
    assert.ok(moved > 0.7 * expected && moved < 1.3 * expected, `N=${n}: moved ${moved} vs ${expected}`);
    assert.ok(Math.abs(moved - b.ownership(1).get(extra.id)!) < 1e-9, 'exactly the new node’s share moved');
    for (const r of [1, 3]) {
      for (const m of movedRanges(a, b, r)) {
        const gained = m.to.filter((x) => !m.from.includes(x));
        assert.deepEqual(gained, [extra.id], `R=${r}: only the new node gains keys`);
      }
    }
    // With three replicas, the replica slots that move are again about 1/(N+1) of all slots.
    const slots = movedRanges(a, b, 3).reduce((s, m) => s + share(m.start, m.end), 0) / 3;
    if (n >= 3)
      assert.ok(slots > 0.6 * expected && slots < 1.4 * expected, `N=${n}: R=3 slots moved ${slots}`);
  }
});

test('removing a node moves only the keys it held, to the remaining nodes (property)', () => {
  fc.assert(
    fc.property(layoutArb, fc.nat(), fc.integer({ min: 1, max: 4 }), (layout, pick, r) => {
      const live = layout.nodes.filter((n) => n.weight > 0);
      fc.pre(live.length >= 2);
      const gone = live[pick % live.length];
      const after: Layout = { version: 2, nodes: layout.nodes.filter((n) => n !== gone) };
      const ranges = movedRanges(new Ring(layout, SMALL), new Ring(after, SMALL), r, SMALL);
      for (const m of ranges) {
        assert.ok(m.from.includes(gone.id), 'only ranges the removed node held change');
        assert.deepEqual(
          m.from.filter((x) => !m.to.includes(x)),
          [gone.id],
          'only the removed node loses keys',
        );
      }
      if (r === 1) {
        const held = new Ring(layout, SMALL).ownership(1).get(gone.id)!;
        const moved = ranges.reduce((s, m) => s + share(m.start, m.end), 0);
        assert.ok(Math.abs(held - moved) < 1e-9);
      }
    }),
    { numRuns: 100 },
  );
});

function share(start: bigint, end: bigint): number {
  if (start === end) return 1;
  return Number((end - start) & ((1n << 64n) - 1n)) / 2 ** 64;
}

/** Any change: nodes added, removed, reweighted, rezoned. */
const changeArb = fc.tuple(
  layoutArb,
  fc.array(fc.tuple(fc.constantFrom('add', 'remove', 'weight', 'zone'), fc.nat()), { maxLength: 4 }),
);

function applyChanges(layout: Layout, changes: [string, number][]): Layout {
  const nodes = [...layout.nodes];
  for (const [kind, x] of changes) {
    const i = nodes.length ? x % nodes.length : 0;
    if (kind === 'add' || nodes.length === 0)
      nodes.push({ id: `added-${x}-${nodes.length}`, weight: 1, zone: x % 2 ? 'z1' : undefined });
    else if (kind === 'remove') nodes.splice(i, 1);
    else if (kind === 'weight') nodes[i] = { ...nodes[i], weight: nodes[i].weight === 2 ? 0.5 : 2 };
    else nodes[i] = { ...nodes[i], zone: `z${x % 3}` };
  }
  const ids = new Set<string>();
  return { version: layout.version + 1, nodes: nodes.filter((n) => !ids.has(n.id) && ids.add(n.id)) };
}

test('movedRanges agrees with comparing preference lists key by key (property)', () => {
  fc.assert(
    fc.property(
      changeArb,
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 200, maxLength: 200 }),
      ([layout, changes], r, sample) => {
        const after = applyChanges(layout, changes);
        const a = new Ring(layout, SMALL);
        const b = new Ring(after, SMALL);
        const ranges = movedRanges(a, b, r);
        // Probe the boundaries themselves and their neighbours as well as random positions.
        const probes = [...sample];
        for (const m of ranges.slice(0, 20)) probes.push(m.start, m.end, (m.start + 1n) & ((1n << 64n) - 1n));
        for (const pos of probes) {
          const from = a.preferenceListAt(pos, r);
          const to = b.preferenceListAt(pos, r);
          const hit = ranges.filter((m) => inRange(pos, m.start, m.end));
          assert.ok(hit.length <= 1, 'ranges do not overlap');
          if (hit.length === 0) assert.deepEqual(from, to, `unchanged at ${pos}`);
          else {
            assert.deepEqual(hit[0].from, from);
            assert.deepEqual(hit[0].to, to);
            assert.notDeepEqual(from, to);
          }
        }
      },
    ),
    { numRuns: 120 },
  );
});

test('an unchanged layout moves nothing; an empty ring places nothing', () => {
  const l = randomLayout(8, 3);
  assert.deepEqual(movedRanges(l, { ...l, version: 2 }, 3), []);
  const empty = new Ring({ version: 1, nodes: [] });
  assert.deepEqual(empty.preferenceList('k', 3), []);
  const all = movedRanges(empty, new Ring({ version: 2, nodes: [{ id: 'a', weight: 1 }] }), 1);
  assert.equal(all.length, 1);
  assert.equal(share(all[0].start, all[0].end), 1);
  assert.deepEqual(all[0].to, ['a']);
});

test('a layout that cannot be placed is a RingError with a stable code', () => {
  const bad: [Layout, string][] = [
    [{ version: -1, nodes: [] }, 'RING_BAD_LAYOUT'],
    [
      {
        version: 1,
        nodes: [
          { id: 'a', weight: 1 },
          { id: 'a', weight: 1 },
        ],
      },
      'RING_BAD_LAYOUT',
    ],
    [{ version: 1, nodes: [{ id: '', weight: 1 }] }, 'RING_BAD_LAYOUT'],
    [{ version: 1, nodes: [{ id: 'a', weight: Number.NaN }] }, 'RING_BAD_LAYOUT'],
    [{ version: 1, nodes: [{ id: 'a', weight: -1 }] }, 'RING_BAD_LAYOUT'],
    [
      { version: 1, nodes: Array.from({ length: 10 }, (_, i) => ({ id: `n${i}`, weight: 1000 })) },
      'RING_TOO_MANY_TOKENS',
    ],
  ];
  for (const [layout, code] of bad) {
    assert.throws(
      () => new Ring(layout),
      (e: unknown) => e instanceof RingError && e.code === code,
    );
  }
  const ring = new Ring(randomLayout(3, 1));
  assert.throws(
    () => ring.preferenceList('k', 0),
    (e: unknown) => e instanceof RingError && e.code === 'RING_BAD_REPLICAS',
  );
});
