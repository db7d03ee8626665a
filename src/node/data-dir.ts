/**
 * A node's data directory, owned by one process at a time. Two nodes writing one store would
 * corrupt it, so the directory carries a lock file naming its owner's pid; a lock left by a
 * process that no longer exists (kill -9, power loss) is taken over.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CairnError } from '../errors.js';

export class DataDirError extends CairnError {}

const LOCK = 'node.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

export function lockDataDir(dir: string): DataDirLock {
  const path = resolve(dir);
  mkdirSync(path, { recursive: true });
  const lockPath = join(path, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DataDirError(
          'DATA_DIR_UNUSABLE',
          `cannot use data directory ${path}: ${(e as Error).message}`,
        );
      }
      const owner = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new DataDirError('DATA_DIR_LOCKED', `data directory ${path} is in use by process ${owner}`);
      }
      unlinkSync(lockPath);
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    fsyncSync(fd);
    closeSync(fd);
    let released = false;
    return {
      path,
      release() {
        if (released) return;
        released = true;
        try {
          unlinkSync(lockPath);
        } catch {
          // Already gone: nothing to release.
        }
      },
    };
  }
  throw new DataDirError('DATA_DIR_LOCKED', `data directory ${path} is locked by another starting process`);
}
