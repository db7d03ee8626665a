/** A small tmpfs mounted for one test: a disk that fills up on purpose. Needs root. */
import { requireRoot } from './netns.js';
import { runChecked, runCommand } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export async function withTmpfs<T>(
  label: string,
  sizeMiB: number,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  requireRoot(`${label} (it mounts a tmpfs)`);
  const mnt = makeTempDir(label);
  await runChecked('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, `cairn-${label}`, mnt]);
  try {
    return await fn(mnt);
  } finally {
    const r = await runCommand('umount', [mnt]);
    if (r.code !== 0) await runCommand('umount', ['-l', mnt]);
    removeTempDir(mnt);
  }
}
