/**
 * The seam between the store and the file system for block files. Every open, write, fsync,
 * unlink and directory operation on blocks goes through a BlockIO, so that a later crash mode
 * (issue 5: power loss) can stand in for the real one and throw away whatever was not fsynced
 * when the node is cut. The store never touches block files any other way.
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';

/** A block file being written: created new, written, optionally made durable, closed. */
export interface BlockFileHandle {
  write(data: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the file's data (and its length) on stable storage. */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export interface BlockIO {
  /** Creates a new file exclusively (fails with EEXIST if it exists). */
  create(path: string): Promise<BlockFileHandle>;
  /**
   * The whole content of a file. With `expected`, the caller knows the length the file should
   * have: the implementation may read only up to one byte past it (enough to tell that the file
   * is longer), which saves the size lookup. With `into` as well (at least `expected` + 1 bytes),
   * it may read into that buffer and return a view of it; the caller tells by the result's buffer.
   */
  read(path: string, expected?: number, into?: Buffer): Promise<Uint8Array>;
  /** fdatasync of an existing file (to make earlier, unsynced writes durable). */
  syncFile(path: string): Promise<void>;
  /** fsync of a directory, making the entries created in it durable. */
  syncDir(path: string): Promise<void>;
  /** Creates a directory; resolves true if it created it, false if it existed. */
  mkdir(path: string): Promise<boolean>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; resolves false if it did not exist. */
  unlink(path: string): Promise<boolean>;
  /** Names in a directory; [] if it does not exist. */
  list(path: string): Promise<string[]>;
}

/** The real file system through node:fs (libuv's thread pool). */
export class NodeBlockIO implements BlockIO {
  async create(path: string): Promise<BlockFileHandle> {
    const fh = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    return {
      async write(data, position) {
        let done = 0;
        while (done < data.length) {
          const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
          done += bytesWritten;
        }
      },
      datasync: () => fh.datasync(),
      close: () => fh.close(),
    };
  }

  async read(path: string, expected?: number, into?: Buffer): Promise<Uint8Array> {
    if (expected === undefined) return readFile(path);
    // Two thread-pool round trips (open, read) instead of readFile's four (open, fstat, read,
    // close); the close is left to finish on its own. A read of a regular file that returns
    // less than asked has met the end, so once `expected` bytes are in, one byte more asked
    // for and not returned tells that the file is not longer, with no read to see 0 bytes.
    const fh = await open(path, constants.O_RDONLY);
    try {
      const buf =
        into && into.length > expected
          ? into.subarray(0, expected + 1)
          : Buffer.allocUnsafeSlow(expected + 1);
      let got = 0;
      for (;;) {
        const want = buf.length - got;
        const { bytesRead } = await fh.read(buf, got, want, got);
        got += bytesRead;
        if (bytesRead === 0 || got === buf.length || (bytesRead < want && got >= expected)) break;
      }
      return buf.subarray(0, got);
    } finally {
      fh.close().catch(() => {});
    }
  }

  async syncFile(path: string): Promise<void> {
    const fh = await open(path, constants.O_RDONLY);
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  async syncDir(path: string): Promise<void> {
    const fh = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async mkdir(path: string): Promise<boolean> {
    try {
      await mkdir(path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  }

  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  async unlink(path: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      return await readdir(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }
}
