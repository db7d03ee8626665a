/**
 * NFS version 3 conformance, part 4: READDIR and READDIRPLUS over a directory of more than 1,000
 * entries with small count, dircount and maxcount, against a real Cairn node. Every entry is
 * listed exactly once, pages stay within the sizes the client gave (measured on the XDR the
 * reply takes), cookies resume where a page ended, and entries removed or added while a listing
 * is under way neither break it nor repeat anything.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DirEntry, type NfsClient, nameText, nfs3 } from '../../src/nfs/index.js';
import { rejectsWith, withNode } from './support.js';

const ENTRIES = 1200;
const name = (i: number) => `entry-${String(i).padStart(5, '0')}-${'x'.repeat(i % 37)}`;
const pad4 = (n: number) => (n + 3) & ~3;

/** XDR bytes of one entry3 (with its "value follows" word), as READDIR's count measures it. */
const entrySize = (e: { name: Uint8Array }) => 4 + 8 + 4 + pad4(e.name.length) + 8;
/** XDR bytes of READDIR3resok around the entries: status, post_op_attr, verifier, end and eof. */
const READDIR_OVERHEAD = 4 + 4 + 84 + 8 + 4 + 4;

async function makeMany(c: NfsClient, dir: nfs3.nfs_fh3, from: number, to: number): Promise<void> {
  const batch = 50;
  for (let i = from; i < to; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, to - i) }, (_, k) =>
        c.create(dir, name(i + k), { mode: 'GUARDED', attributes: { mode: 0o644 } }),
      ),
    );
  }
}

const names = (es: { name: Uint8Array }[]) =>
  es.map((e) => nameText(e.name)).filter((n) => n !== '.' && n !== '..');

test('READDIR and READDIRPLUS over 1,200 entries in small pages', { timeout: 120_000 }, async (t) => {
  await withNode([{ path: '/export', id: 1 }], async (n) => {
    const c = await n.connect();
    const root = await c.mount('/export');
    const big = await c.mkdir(root, 'big');
    await makeMany(c, big.fh, 0, ENTRIES);
    const expected = Array.from({ length: ENTRIES }, (_, i) => name(i)).sort();

    await t.test('READDIR with count 600: every entry once, each page within count', async () => {
      const all: DirEntry[] = [];
      let cookie = 0n;
      let verf: Uint8Array = new Uint8Array(8);
      let pages = 0;
      for (;;) {
        const count = 600;
        const p = await c.readdir(big.fh, cookie, verf, count);
        pages++;
        const size = READDIR_OVERHEAD + p.entries.reduce((s, e) => s + entrySize(e), 0);
        assert.ok(size <= count, `page ${pages}: ${size} bytes for count ${count}`);
        assert.ok(p.entries.length > 0 || p.eof);
        all.push(...p.entries);
        if (p.eof) break;
        cookie = p.entries[p.entries.length - 1].cookie;
        verf = p.cookieverf;
      }
      assert.ok(pages > 20, `${pages} pages`);
      assert.deepEqual(names(all).sort(), expected);
      assert.equal(new Set(all.map((e) => e.cookie)).size, all.length, 'distinct cookies');
      assert.deepEqual(
        all.slice(0, 2).map((e) => nameText(e.name)),
        ['.', '..'],
      );
    });

    await t.test('READDIR: the smallest count that holds one entry gets exactly one', async () => {
      const first = await c.readdir(big.fh, 0n, undefined, 8192);
      const e = first.entries[2];
      const one = await c.readdir(
        big.fh,
        first.entries[1].cookie,
        first.cookieverf,
        READDIR_OVERHEAD + entrySize(e),
      );
      assert.deepEqual(
        one.entries.map((x) => nameText(x.name)),
        [nameText(e.name)],
      );
      assert.equal(one.eof, false);
      await rejectsWith(
        c.readdir(big.fh, first.entries[1].cookie, first.cookieverf, READDIR_OVERHEAD + entrySize(e) - 1),
        'NFS3ERR_TOOSMALL',
      );
    });

    await t.test(
      'READDIRPLUS with dircount 300 and maxcount 2000: every entry once, with handles',
      async () => {
        const all = [];
        let cookie = 0n;
        let verf: Uint8Array = new Uint8Array(8);
        for (;;) {
          const p = await c.readdirplus(big.fh, cookie, verf, 300, 2000);
          // What READDIRPLUS3resok takes: each entry's fileid, name, cookie, post_op_attr and handle.
          let size = READDIR_OVERHEAD;
          let dirSize = 0;
          for (const e of p.entries) {
            const handle = e.fh ? 4 + 4 + pad4(e.fh.data.length) : 4;
            size += 4 + 8 + 4 + pad4(e.name.length) + 8 + (e.attributes ? 88 : 4) + handle;
            dirSize += 8 + 4 + pad4(e.name.length) + 8;
          }
          assert.ok(size <= 2000, `${size} bytes for maxcount 2000`);
          assert.ok(dirSize <= 300 || p.entries.length === 1, `${dirSize} directory bytes for dircount 300`);
          all.push(...p.entries);
          if (p.eof) break;
          cookie = p.entries[p.entries.length - 1].cookie;
          verf = p.cookieverf;
        }
        assert.deepEqual(names(all).sort(), expected);
        for (const e of all)
          assert.ok(e.fh && e.attributes, `${nameText(e.name)} has a handle and attributes`);
        const sample = all.filter((_, i) => i % 97 === 5);
        for (const e of sample) {
          const a = await c.getattr(e.fh as nfs3.nfs_fh3);
          assert.equal(a.fileid, e.fileid);
          assert.equal(a.type, nfs3.NF3REG);
        }
      },
    );

    await t.test(
      'entries removed and added during a listing: nothing repeats, the rest are all there',
      async () => {
        const seen: string[] = [];
        let cookie = 0n;
        let verf: Uint8Array = new Uint8Array(8);
        let page = 0;
        const removed = new Set<string>();
        const added = new Set<string>();
        let extra = ENTRIES;
        for (;;) {
          const p = await c.readdir(big.fh, cookie, verf, 1024);
          seen.push(...names(p.entries));
          if (p.eof) break;
          const last = p.entries[p.entries.length - 1];
          page++;
          // Remove the entry we resume after, a few listed ones and a few not yet listed; add new ones.
          if (page % 3 === 1) {
            const victims = [
              nameText(last.name),
              name((page * 37) % ENTRIES),
              name((page * 53 + 7) % ENTRIES),
            ];
            for (const v of victims) {
              if (v === '.' || v === '..' || removed.has(v)) continue;
              await c.remove(big.fh, v).catch((e) => {
                if (!String(e).includes('NOENT')) throw e;
              });
              removed.add(v);
            }
            await makeMany(c, big.fh, extra, extra + 3);
            for (let i = extra; i < extra + 3; i++) added.add(name(i));
            extra += 3;
          }
          cookie = last.cookie;
          verf = p.cookieverf;
        }
        assert.equal(new Set(seen).size, seen.length, 'no entry listed twice');
        const stayed = expected.filter((x) => !removed.has(x));
        const seenSet = new Set(seen);
        for (const x of stayed) assert.ok(seenSet.has(x), `${x} was there all along and is listed`);
        for (const x of seen) assert.ok(expected.includes(x) || added.has(x), `${x} exists or existed`);
        // A fresh listing has exactly what is there now.
        assert.deepEqual(
          names(await c.readdirAll(big.fh, 4096)).sort(),
          [...stayed, ...[...added].filter((x) => !removed.has(x))].sort(),
        );
      },
    );

    await t.test('a cookie of a removed entry still resumes (cookies outlive their entries)', async () => {
      const p = await c.readdir(big.fh, 0n, undefined, 1024);
      const last = p.entries[p.entries.length - 1];
      await c.remove(big.fh, last.name);
      const next = await c.readdir(big.fh, last.cookie, p.cookieverf, 1024);
      assert.ok(next.entries.length > 0);
      assert.ok(
        next.entries.every((e) => e.cookie > last.cookie),
        'the listing goes on after it',
      );
      const nextPlus = await c.readdirplus(big.fh, last.cookie, p.cookieverf, 1024, 4096);
      const k = Math.min(next.entries.length, nextPlus.entries.length);
      assert.ok(k > 0);
      assert.deepEqual(
        nextPlus.entries.slice(0, k).map((e) => e.cookie),
        next.entries.slice(0, k).map((e) => e.cookie),
        'READDIRPLUS resumes at the same place',
      );
    });
  });
});
