/*
 * Power-loss crash mode for real Cairn processes: an LD_PRELOAD library.
 *
 * kill -9 leaves the page cache behind, so it cannot show what a power cut loses. This library
 * sits between the process and glibc and, for regular files and directories under
 * $CAIRN_POWERLOSS_ROOT, appends to an undo log ($CAIRN_POWERLOSS_LOG) everything needed to undo
 * each change BEFORE the change is made, and a durability record after each fsync-like call.
 * After the process is killed, index.ts reads the log and undoes every change that no durability
 * record covers: the files are left as a disk would hold them after losing power.
 *
 * Why the system-call boundary: LMDB (native code), libuv's thread pool and the journal's
 * synchronous writes all meet here, and nowhere else.
 *
 * The log is written with plain write(2) on an O_APPEND descriptor, one record per call, never
 * fsynced: it only has to survive kill -9 (the page cache), not the power cut it simulates.
 * One mutex orders appends (libuv's pool and LMDB's writer call concurrently).
 *
 * Record layout (little endian, see index.ts): a 32-byte header {magic, total length, type,
 * pid, id, FNV-1a of the body, 0} and a body that depends on the type. Ids are pid << 40 | n, so
 * processes that share the log (fork, exec) never collide.
 *
 * The state directory (the log's directory) also holds:
 *   limbo/   hard links to files about to be unlinked or replaced, so that an undone unlink can
 *            bring them back (the state directory must be on the root's file system);
 *   boot_id  served instead of /proc/sys/kernel/random/boot_id: index.ts changes it at each cut,
 *            so LMDB sees a reboot and distrusts what it committed but never flushed, as it
 *            would after a real power loss.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAGIC 0x4c50524eu /* "NRPL" */

enum {
  R_WRITE = 1,       /* a write (or a hole punched): old bytes of the region, old size */
  R_TRUNCATE = 2,    /* a size change: old size, and the bytes a shrink cut off */
  R_SYNC_BEGIN = 3,  /* fsync & co. began: covers what was logged before, minus what was in flight */
  R_SYNC_END = 4,    /* ...and succeeded */
  R_CREATE = 5,      /* a new name in a directory (file, directory, link, symlink) */
  R_CANCEL = 6,      /* the operation of an earlier record failed: nothing to undo */
  R_UNLINK = 7,      /* a name removed (the file kept in limbo) */
  R_RENAME = 8,      /* a name moved (a replaced file kept in limbo) */
  R_UNSUPPORTED = 9, /* something the model cannot undo: cut() refuses the log */
};

enum { K_FILE = 1, K_DIR = 2, K_LINK = 3 };
enum { S_KIND_FILE = 1, S_KIND_DIR = 2, S_KIND_ALL = 3 };
enum { W_DSYNC = 1 };

static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_symlinkat)(const char *, int, const char *);

static struct {
  int active;
  char root[PATH_MAX];
  size_t root_len;
  char state[PATH_MAX];
  size_t state_len;
  char limbo[PATH_MAX];
  char boot_id[PATH_MAX];
  int log_fd;
} g;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t counter;
/* Records whose operation has been logged and not yet returned: a sync that begins meanwhile
 * does not cover them (the change may land after the flush). */
#define MAX_INFLIGHT 4096
static uint64_t inflight[MAX_INFLIGHT];
static int n_inflight;

/* What is known about each descriptor, validated against fstat on every use: libuv closes
 * descriptors with syscall(SYS_close), which no wrapper sees, so a number may be reused. */
#define MAX_FDS 65536
struct fd_entry {
  dev_t dev;
  ino_t ino;
  int state; /* 0 unknown, 1 tracked, 2 not tracked */
  char *path;
};
static struct fd_entry fds[MAX_FDS];
static pthread_mutex_t fd_mu = PTHREAD_MUTEX_INITIALIZER;

static void die(const char *what) {
  /* dprintf writes through glibc's internal write, not through this library's. */
  dprintf(2, "powerloss: %s: %s\n", what, strerror(errno));
  abort();
}

static void *sym(const char *name) {
  void *p = dlsym(RTLD_NEXT, name);
  if (!p) {
    errno = ENOSYS;
    die(name);
  }
  return p;
}

static void atfork_prepare(void) {
  pthread_mutex_lock(&log_mu);
  pthread_mutex_lock(&fd_mu);
}
static void atfork_parent(void) {
  pthread_mutex_unlock(&fd_mu);
  pthread_mutex_unlock(&log_mu);
}
static void atfork_child(void) {
  /* The parent's operations in flight are not the child's. */
  n_inflight = 0;
  pthread_mutex_unlock(&fd_mu);
  pthread_mutex_unlock(&log_mu);
}

static void init(void) {
  real_openat = sym("openat");
  real_write = sym("write");
  real_pwrite = sym("pwrite");
  real_writev = sym("writev");
  real_pwritev = sym("pwritev");
  real_pwritev2 = sym("pwritev2");
  real_ftruncate = sym("ftruncate");
  real_truncate = sym("truncate");
  real_fallocate = sym("fallocate");
  real_posix_fallocate = sym("posix_fallocate");
  real_fsync = sym("fsync");
  real_fdatasync = sym("fdatasync");
  real_sync_file_range = sym("sync_file_range");
  real_sync = sym("sync");
  real_syncfs = sym("syncfs");
  real_mkdirat = sym("mkdirat");
  real_unlinkat = sym("unlinkat");
  real_renameat = sym("renameat");
  real_renameat2 = sym("renameat2");
  real_linkat = sym("linkat");
  real_symlinkat = sym("symlinkat");

  const char *root = getenv("CAIRN_POWERLOSS_ROOT");
  const char *log = getenv("CAIRN_POWERLOSS_LOG");
  if (!root || !*root || !log || !*log) return;
  if (!realpath(root, g.root)) die("CAIRN_POWERLOSS_ROOT");
  g.root_len = strlen(g.root);
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", log);
  char *slash = strrchr(dir, '/');
  if (slash == dir) dir[1] = 0;
  else if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  if (!realpath(dir, g.state)) die("the directory of CAIRN_POWERLOSS_LOG");
  g.state_len = strlen(g.state);
  snprintf(g.limbo, sizeof g.limbo, "%s/limbo", g.state);
  snprintf(g.boot_id, sizeof g.boot_id, "%s/boot_id", g.state);
  if (real_mkdirat(AT_FDCWD, g.limbo, 0700) != 0 && errno != EEXIST) die(g.limbo);
  g.log_fd = real_openat(AT_FDCWD, log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (g.log_fd < 0) die(log);
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  g.active = 1;
}

#define INIT() pthread_once(&once, init)

/* ---- paths */

static int under(const char *path, const char *dir, size_t len) {
  return strncmp(path, dir, len) == 0 && (path[len] == 0 || path[len] == '/');
}

/* LMDB's lock file is shared memory, not durable state: after a power loss LMDB rebuilds it. */
static int excluded_name(const char *name) {
  size_t n = strlen(name);
  return strcmp(name, "lock.mdb") == 0 || (n >= 5 && strcmp(name + n - 5, "-lock") == 0);
}

static int tracked_path(const char *path) {
  if (!under(path, g.root, g.root_len)) return 0;
  if (under(path, g.state, g.state_len)) return 0;
  const char *base = strrchr(path, '/');
  return !excluded_name(base ? base + 1 : path);
}

/* The tracked path of a regular file or directory open on fd, or 0 (st filled either way). */
static int fd_tracked(int fd, struct stat *st, char *path) {
  if (fstat(fd, st) != 0) return 0;
  if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) return 0;
  if (fd >= 0 && fd < MAX_FDS) {
    pthread_mutex_lock(&fd_mu);
    struct fd_entry *e = &fds[fd];
    if (e->state && e->dev == st->st_dev && e->ino == st->st_ino) {
      int t = e->state == 1;
      if (t) snprintf(path, PATH_MAX, "%s", e->path);
      pthread_mutex_unlock(&fd_mu);
      return t;
    }
    pthread_mutex_unlock(&fd_mu);
  }
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, PATH_MAX - 1);
  if (n < 0) return 0;
  path[n] = 0;
  int t = tracked_path(path);
  if (fd >= 0 && fd < MAX_FDS) {
    pthread_mutex_lock(&fd_mu);
    struct fd_entry *e = &fds[fd];
    free(e->path);
    e->path = t ? strdup(path) : NULL;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->state = t && e->path ? 1 : 2;
    pthread_mutex_unlock(&fd_mu);
  }
  return t;
}

/*
 * Splits (dirfd, path) into the canonical directory that holds the last component and the
 * component itself; 1 if that directory is under the root (and the name is one we track).
 */
static int resolve_parent(int dirfd, const char *path, char *parent, char *name, struct stat *pst) {
  char full[PATH_MAX * 2];
  if (path[0] == '/') {
    snprintf(full, sizeof full, "%s", path);
  } else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (!getcwd(base, sizeof base)) return 0;
    } else {
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = readlink(link, base, sizeof base - 1);
      if (n < 0) return 0;
      base[n] = 0;
    }
    snprintf(full, sizeof full, "%s/%s", base, path);
  }
  size_t len = strlen(full);
  while (len > 1 && full[len - 1] == '/') full[--len] = 0;
  char *slash = strrchr(full, '/');
  if (!slash) return 0;
  const char *last = slash + 1;
  if (!*last || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) return 0;
  if (strlen(last) >= NAME_MAX + 1) return 0;
  snprintf(name, NAME_MAX + 1, "%s", last);
  if (slash == full) slash[1] = 0;
  else *slash = 0;
  if (!realpath(full, parent)) return 0;
  if (!under(parent, g.root, g.root_len) || under(parent, g.state, g.state_len)) return 0;
  if (excluded_name(name)) return 0;
  return stat(parent, pst) == 0;
}

/* ---- the log */

struct buf {
  char *p;
  size_t n, cap;
};

/* Room for n more bytes at the end of the buffer; returns where they start. */
static char *reserve(struct buf *b, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) die("out of memory");
    b->p = p;
    b->cap = cap;
  }
  b->n += n;
  return b->p + b->n - n;
}
static void put(struct buf *b, const void *data, size_t n) { memcpy(reserve(b, n), data, n); }
static void put32(struct buf *b, uint32_t v) { put(b, &v, 4); }
static void put64(struct buf *b, uint64_t v) { put(b, &v, 8); }
static void putstr(struct buf *b, const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  put32(b, n);
  put(b, s, n);
}
static struct buf new_record(void) {
  struct buf b = {0};
  reserve(&b, 32);
  return b;
}

static uint64_t next_id_locked(void) { return ((uint64_t)getpid() << 40) | ++counter; }

static uint64_t next_id(void) {
  pthread_mutex_lock(&log_mu);
  uint64_t id = next_id_locked();
  pthread_mutex_unlock(&log_mu);
  return id;
}

/*
 * Appends a record (the body after the 32 bytes new_record reserved) under the log mutex, with
 * `id` (0: a fresh one), optionally listing the operations in flight (a sync's begin) and
 * optionally registering the record as in flight until done() is called. Returns the id.
 */
static uint64_t append(uint32_t type, struct buf *b, uint64_t id, int list_inflight, int track) {
  pthread_mutex_lock(&log_mu);
  if (!id) id = next_id_locked();
  if (list_inflight) {
    put32(b, (uint32_t)n_inflight);
    for (int i = 0; i < n_inflight; i++) put64(b, inflight[i]);
  }
  uint32_t sum = 2166136261u;
  for (size_t i = 32; i < b->n; i++) sum = (sum ^ (unsigned char)b->p[i]) * 16777619u;
  uint32_t hdr[8] = {MAGIC, (uint32_t)b->n, type, (uint32_t)getpid(), (uint32_t)id, (uint32_t)(id >> 32), sum, 0};
  if (b->n > UINT32_MAX) die("record too large");
  memcpy(b->p, hdr, 32);
  ssize_t w = real_write(g.log_fd, b->p, b->n);
  if (w != (ssize_t)b->n) {
    if (w >= 0) errno = EIO;
    die("appending to CAIRN_POWERLOSS_LOG");
  }
  if (track) {
    if (n_inflight == MAX_INFLIGHT) {
      errno = EOVERFLOW;
      die("too many operations in flight");
    }
    inflight[n_inflight++] = id;
  }
  pthread_mutex_unlock(&log_mu);
  free(b->p);
  return id;
}

static void done(uint64_t id) {
  if (!id) return;
  pthread_mutex_lock(&log_mu);
  for (int i = 0; i < n_inflight; i++) {
    if (inflight[i] == id) {
      inflight[i] = inflight[--n_inflight];
      break;
    }
  }
  pthread_mutex_unlock(&log_mu);
}

/* Ends an operation: a CANCEL record if it failed, and it is no longer in flight. */
static void finish(uint64_t id, int failed) {
  if (!id) return;
  if (failed) {
    struct buf b = new_record();
    put64(&b, id);
    append(R_CANCEL, &b, 0, 0, 0);
  }
  done(id);
}

static void unsupported(const char *what, const char *path) {
  struct buf b = new_record();
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof msg, "%s: %s", what, path);
  putstr(&b, msg);
  append(R_UNSUPPORTED, &b, 0, 0, 0);
}

/* Reads [off, off + n) of the file open on fd into dst; returns the bytes read. */
static size_t read_old(int fd, int flags, off_t off, size_t n, char *dst) {
  int rfd = fd;
  if ((flags & O_ACCMODE) == O_WRONLY) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    rfd = real_openat(AT_FDCWD, link, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) die("reopening a write-only file to save its old bytes");
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(rfd, dst + got, n - got, off + (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  if (rfd != fd) close(rfd);
  return got;
}

/*
 * For tests only: with CAIRN_POWERLOSS_GATE naming a FIFO, every sync (CAIRN_POWERLOSS_GATE_AT=sync)
 * or every tracked write (=write) waits, once its record is logged, for one byte from the FIFO:
 * a test can act while the operation is under way, deterministically.
 */
static void gate(const char *at) {
  const char *fifo = getenv("CAIRN_POWERLOSS_GATE");
  const char *which = getenv("CAIRN_POWERLOSS_GATE_AT");
  if (!fifo || !*fifo || !which || strcmp(which, at) != 0) return;
  int fd = real_openat(AT_FDCWD, fifo, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("opening CAIRN_POWERLOSS_GATE");
  char c;
  while (read(fd, &c, 1) < 0 && errno == EINTR) {
  }
  close(fd);
}

/* ---- file content */

/*
 * Before a write of n bytes at off (off < 0: at the descriptor's position, or its end with
 * O_APPEND). dsync: -1 never durable by itself, 0 as the descriptor's O_DSYNC/O_SYNC says,
 * 1 durable (RWF_DSYNC). Returns the record's id, 0 if the file is not tracked.
 */
static uint64_t before_write(int fd, off_t off, size_t n, int dsync, int append_mode) {
  struct stat st;
  char path[PATH_MAX];
  if (!g.active || !fd_tracked(fd, &st, path) || !S_ISREG(st.st_mode)) return 0;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return 0;
  if (dsync == 0) dsync = (flags & O_DSYNC) ? 1 : -1;
  if (off < 0) off = (append_mode || (flags & O_APPEND)) ? st.st_size : lseek(fd, 0, SEEK_CUR);
  if (off < 0) return 0;
  size_t old = 0;
  if (dsync < 0 && off < st.st_size) old = (size_t)(st.st_size - off) < n ? (size_t)(st.st_size - off) : n;
  struct buf b = new_record();
  put64(&b, st.st_dev);
  put64(&b, st.st_ino);
  put64(&b, (uint64_t)off);
  put64(&b, n);
  put64(&b, (uint64_t)st.st_size);
  put32(&b, dsync > 0 ? W_DSYNC : 0);
  putstr(&b, path);
  size_t at = b.n;
  put64(&b, 0);
  if (old) {
    size_t got = read_old(fd, flags, off, old, reserve(&b, old));
    b.n -= old - got;
    old = got;
  }
  uint64_t o = old;
  memcpy(b.p + at, &o, 8);
  uint64_t id = append(R_WRITE, &b, 0, 0, 1);
  gate("write");
  return id;
}

/* Before the file open on fd takes the size `size`. Returns the record's id, 0 if untracked. */
static uint64_t before_resize(int fd, off_t size) {
  struct stat st;
  char path[PATH_MAX];
  if (!g.active || !fd_tracked(fd, &st, path) || !S_ISREG(st.st_mode) || size == st.st_size) return 0;
  int flags = fcntl(fd, F_GETFL);
  struct buf b = new_record();
  put64(&b, st.st_dev);
  put64(&b, st.st_ino);
  put64(&b, (uint64_t)st.st_size);
  put64(&b, (uint64_t)size);
  putstr(&b, path);
  size_t at = b.n;
  put64(&b, 0);
  if (size < st.st_size) {
    size_t cut = (size_t)(st.st_size - size);
    size_t got = read_old(fd, flags < 0 ? O_WRONLY : flags, size, cut, reserve(&b, cut));
    b.n -= cut - got;
    uint64_t o = got;
    memcpy(b.p + at, &o, 8);
  }
  return append(R_TRUNCATE, &b, 0, 0, 1);
}

static size_t iov_len(const struct iovec *iov, int n) {
  size_t t = 0;
  for (int i = 0; i < n; i++) t += iov[i].iov_len;
  return t;
}

#define AROUND(id_expr, call, failed_expr)  \
  int saved = errno;                        \
  uint64_t id = (id_expr);                  \
  errno = saved;                            \
  __typeof__(call) r = (call);              \
  saved = errno;                            \
  finish(id, (failed_expr));                \
  errno = saved;                            \
  return r;

ssize_t write(int fd, const void *buf, size_t n) {
  INIT();
  AROUND(before_write(fd, -1, n, 0, 0), real_write(fd, buf, n), 0)
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  INIT();
  AROUND(before_write(fd, off, n, 0, 0), real_pwrite(fd, buf, n, off), 0)
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) { return pwrite(fd, buf, n, off); }

ssize_t writev(int fd, const struct iovec *iov, int n) {
  INIT();
  AROUND(before_write(fd, -1, iov_len(iov, n), 0, 0), real_writev(fd, iov, n), 0)
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off) {
  INIT();
  AROUND(before_write(fd, off, iov_len(iov, n), 0, 0), real_pwritev(fd, iov, n, off), 0)
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off64_t off) { return pwritev(fd, iov, n, off); }

ssize_t pwritev2(int fd, const struct iovec *iov, int n, off_t off, int flags) {
  INIT();
  int dsync = (flags & (RWF_DSYNC | RWF_SYNC)) ? 1 : 0;
  AROUND(before_write(fd, off, iov_len(iov, n), dsync, (flags & RWF_APPEND) != 0),
         real_pwritev2(fd, iov, n, off, flags), 0)
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int n, off64_t off, int flags) {
  return pwritev2(fd, iov, n, off, flags);
}

int ftruncate(int fd, off_t size) {
  INIT();
  AROUND(before_resize(fd, size), real_ftruncate(fd, size), 0)
}

int ftruncate64(int fd, off64_t size) { return ftruncate(fd, size); }

static uint64_t before_truncate_path(const char *path, off_t size) {
  if (!g.active) return 0;
  int fd = real_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t id = before_resize(fd, size);
  close(fd);
  return id;
}

int truncate(const char *path, off_t size) {
  INIT();
  AROUND(before_truncate_path(path, size), real_truncate(path, size), 0)
}

int truncate64(const char *path, off64_t size) { return truncate(path, size); }

static uint64_t before_fallocate(int fd, int mode, off_t off, off_t len) {
  struct stat st;
  char path[PATH_MAX];
  if (!g.active || !fd_tracked(fd, &st, path) || !S_ISREG(st.st_mode)) return 0;
  if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) return before_write(fd, off, (size_t)len, -1, 0);
  if (mode & ~FALLOC_FL_KEEP_SIZE) {
    unsupported("fallocate mode", path);
    return 0;
  }
  if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > st.st_size) return before_resize(fd, off + len);
  return 0;
}

int fallocate(int fd, int mode, off_t off, off_t len) {
  INIT();
  AROUND(before_fallocate(fd, mode, off, len), real_fallocate(fd, mode, off, len), 0)
}

int fallocate64(int fd, int mode, off64_t off, off64_t len) { return fallocate(fd, mode, off, len); }

int posix_fallocate(int fd, off_t off, off_t len) {
  INIT();
  AROUND(before_fallocate(fd, 0, off, len), real_posix_fallocate(fd, off, len), 0)
}

int posix_fallocate64(int fd, off64_t off, off64_t len) { return posix_fallocate(fd, off, len); }

/* ---- durability */

static uint64_t sync_begin(int kind, dev_t dev, ino_t ino) {
  struct buf b = new_record();
  put32(&b, (uint32_t)kind);
  put64(&b, dev);
  put64(&b, ino);
  uint64_t id = append(R_SYNC_BEGIN, &b, 0, 1, 0);
  gate("sync");
  return id;
}

static void sync_end(uint64_t id) {
  struct buf b = new_record();
  put64(&b, id);
  append(R_SYNC_END, &b, 0, 0, 0);
}

static uint64_t before_sync_fd(int fd) {
  struct stat st;
  char path[PATH_MAX];
  if (!g.active || !fd_tracked(fd, &st, path)) return 0;
  return sync_begin(S_ISDIR(st.st_mode) ? S_KIND_DIR : S_KIND_FILE, st.st_dev, st.st_ino);
}

#define AROUND_SYNC(begin_expr, call, ok_expr) \
  int saved = errno;                           \
  uint64_t id = (begin_expr);                  \
  errno = saved;                               \
  __typeof__(call) r = (call);                 \
  saved = errno;                               \
  if (id && (ok_expr)) sync_end(id);           \
  errno = saved;                               \
  return r;

int fsync(int fd) {
  INIT();
  AROUND_SYNC(before_sync_fd(fd), real_fsync(fd), r == 0)
}

int fdatasync(int fd) {
  INIT();
  AROUND_SYNC(before_sync_fd(fd), real_fdatasync(fd), r == 0)
}

/* Generous: only a write-and-wait of the range counts, and it counts as a sync of the file. */
int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
  INIT();
  int waits = (flags & SYNC_FILE_RANGE_WRITE) && (flags & SYNC_FILE_RANGE_WAIT_AFTER);
  AROUND_SYNC(waits ? before_sync_fd(fd) : 0, real_sync_file_range(fd, off, n, flags), r == 0)
}

int syncfs(int fd) {
  INIT();
  AROUND_SYNC(g.active ? sync_begin(S_KIND_ALL, 0, 0) : 0, real_syncfs(fd), r == 0)
}

void sync(void) {
  INIT();
  int saved = errno;
  uint64_t id = g.active ? sync_begin(S_KIND_ALL, 0, 0) : 0;
  errno = saved;
  real_sync();
  saved = errno;
  if (id) sync_end(id);
  errno = saved;
}

/* ---- names */

static void put_dir(struct buf *b, const struct stat *pst) {
  put64(b, pst->st_dev);
  put64(b, pst->st_ino);
}

static uint64_t log_create(int kind, mode_t mode, const char *parent, const struct stat *pst, const char *name) {
  struct buf b = new_record();
  put32(&b, (uint32_t)kind);
  put32(&b, (uint32_t)mode);
  put_dir(&b, pst);
  putstr(&b, parent);
  putstr(&b, name);
  return append(R_CREATE, &b, 0, 0, 1);
}

/*
 * Keeps the file at `path` alive in limbo under the record's id, so an undone unlink can link it
 * back; 0 if the file is already gone (the operation will fail on its own).
 */
static int to_limbo(const char *path, uint64_t id, char *limbo_name) {
  snprintf(limbo_name, 32, "%016llx", (unsigned long long)id);
  char dst[PATH_MAX + 32];
  snprintf(dst, sizeof dst, "%s/%s", g.limbo, limbo_name);
  if (real_linkat(AT_FDCWD, path, AT_FDCWD, dst, 0) == 0) return 1;
  if (errno == ENOENT) return 0;
  die("linking a file into limbo (is the state directory on the root's file system?)");
  return 0;
}

static int boot_id_path(const char *path) { return strcmp(path, "/proc/sys/kernel/random/boot_id") == 0; }

static int do_openat(int dirfd, const char *path, int flags, mode_t mode) {
  INIT();
  if (!g.active) return real_openat(dirfd, path, flags, mode);
  int saved = errno;
  if (boot_id_path(path) && access(g.boot_id, R_OK) == 0) {
    errno = saved;
    return real_openat(AT_FDCWD, g.boot_id, flags, mode);
  }
  char parent[PATH_MAX], name[NAME_MAX + 1];
  struct stat pst, st;
  if (!(flags & (O_CREAT | O_TRUNC)) || (flags & O_TMPFILE) == O_TMPFILE ||
      !resolve_parent(dirfd, path, parent, name, &pst)) {
    errno = saved;
    return real_openat(dirfd, path, flags, mode);
  }
  uint64_t id = 0;
  if (fstatat(dirfd, path, &st, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) != 0) {
    if (flags & O_CREAT) id = log_create(K_FILE, mode, parent, &pst, name);
  } else if ((flags & O_TRUNC) && S_ISREG(st.st_mode) && (flags & O_ACCMODE) != O_RDONLY && st.st_size > 0) {
    int fd = real_openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      id = before_resize(fd, 0);
      close(fd);
    }
  }
  errno = saved;
  int fd = real_openat(dirfd, path, flags, mode);
  saved = errno;
  finish(id, fd < 0);
  errno = saved;
  return fd;
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(dirfd, path, flags, mode);
}

/* _FORTIFY_SOURCE's checked variants (no mode: they are called without O_CREAT). */
int __open_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }
int __openat_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags, 0); }

int creat(const char *path, mode_t mode) { return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) { return creat(path, mode); }

int mkdirat(int dirfd, const char *path, mode_t mode) {
  INIT();
  int saved = errno;
  char parent[PATH_MAX], name[NAME_MAX + 1];
  struct stat pst, st;
  uint64_t id = 0;
  if (g.active && resolve_parent(dirfd, path, parent, name, &pst) &&
      fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0)
    id = log_create(K_DIR, mode, parent, &pst, name);
  errno = saved;
  int r = real_mkdirat(dirfd, path, mode);
  saved = errno;
  finish(id, r != 0);
  errno = saved;
  return r;
}

int mkdir(const char *path, mode_t mode) { return mkdirat(AT_FDCWD, path, mode); }

int unlinkat(int dirfd, const char *path, int flags) {
  INIT();
  int saved = errno;
  char parent[PATH_MAX], name[NAME_MAX + 1];
  char limbo_name[32] = "";
  struct stat pst, st;
  uint64_t id = 0;
  if (g.active && resolve_parent(dirfd, path, parent, name, &pst) &&
      fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    char full[PATH_MAX * 2];
    snprintf(full, sizeof full, "%s/%s", parent, name);
    id = next_id();
    if (!S_ISDIR(st.st_mode) && !to_limbo(full, id, limbo_name)) id = 0;
  }
  if (id) {
    struct buf b = new_record();
    put32(&b, S_ISDIR(st.st_mode) ? K_DIR : K_FILE);
    put32(&b, st.st_mode & 07777);
    put_dir(&b, &pst);
    put64(&b, st.st_ino);
    putstr(&b, parent);
    putstr(&b, name);
    putstr(&b, limbo_name);
    append(R_UNLINK, &b, id, 0, 1);
  }
  errno = saved;
  int r = real_unlinkat(dirfd, path, flags);
  saved = errno;
  finish(id, r != 0);
  errno = saved;
  return r;
}

int unlink(const char *path) { return unlinkat(AT_FDCWD, path, 0); }
int rmdir(const char *path) { return unlinkat(AT_FDCWD, path, AT_REMOVEDIR); }

static uint64_t before_rename(int ofd, const char *from, int nfd, const char *to, unsigned int flags) {
  char fparent[PATH_MAX], fname[NAME_MAX + 1], tparent[PATH_MAX], tname[NAME_MAX + 1];
  struct stat fpst, tpst, fst, tst;
  if (!g.active) return 0;
  int ft = resolve_parent(ofd, from, fparent, fname, &fpst);
  int tt = resolve_parent(nfd, to, tparent, tname, &tpst);
  if (!ft && !tt) return 0;
  if (ft != tt) {
    unsupported("rename across the root's boundary", ft ? fparent : tparent);
    return 0;
  }
  if (flags & RENAME_EXCHANGE) {
    unsupported("RENAME_EXCHANGE", fparent);
    return 0;
  }
  if (fstatat(ofd, from, &fst, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  int replaced = fstatat(nfd, to, &tst, AT_SYMLINK_NOFOLLOW) == 0;
  if (replaced && tst.st_ino == fst.st_ino && tst.st_dev == fst.st_dev) return 0;
  uint64_t id = next_id();
  char limbo_name[32] = "";
  uint32_t rkind = 0;
  if (replaced) {
    rkind = S_ISDIR(tst.st_mode) ? K_DIR : K_FILE;
    if (rkind == K_FILE) {
      char full[PATH_MAX * 2];
      snprintf(full, sizeof full, "%s/%s", tparent, tname);
      if (!to_limbo(full, id, limbo_name)) return 0;
    }
  }
  struct buf b = new_record();
  put_dir(&b, &fpst);
  put_dir(&b, &tpst);
  put64(&b, fst.st_ino);
  put64(&b, replaced ? tst.st_ino : 0);
  put32(&b, rkind);
  put32(&b, replaced ? tst.st_mode & 07777 : 0);
  putstr(&b, fparent);
  putstr(&b, fname);
  putstr(&b, tparent);
  putstr(&b, tname);
  putstr(&b, limbo_name);
  return append(R_RENAME, &b, id, 0, 1);
}

int renameat2(int ofd, const char *from, int nfd, const char *to, unsigned int flags) {
  INIT();
  AROUND(before_rename(ofd, from, nfd, to, flags),
         flags ? real_renameat2(ofd, from, nfd, to, flags) : real_renameat(ofd, from, nfd, to), r != 0)
}

int renameat(int ofd, const char *from, int nfd, const char *to) { return renameat2(ofd, from, nfd, to, 0); }
int rename(const char *from, const char *to) { return renameat2(AT_FDCWD, from, AT_FDCWD, to, 0); }

static uint64_t before_new_name(int dirfd, const char *path) {
  char parent[PATH_MAX], name[NAME_MAX + 1];
  struct stat pst, st;
  if (!g.active || !resolve_parent(dirfd, path, parent, name, &pst)) return 0;
  if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) return 0;
  return log_create(K_LINK, 0, parent, &pst, name);
}

int linkat(int ofd, const char *from, int nfd, const char *to, int flags) {
  INIT();
  AROUND(before_new_name(nfd, to), real_linkat(ofd, from, nfd, to, flags), r != 0)
}

int link(const char *from, const char *to) { return linkat(AT_FDCWD, from, AT_FDCWD, to, 0); }

int symlinkat(const char *target, int nfd, const char *path) {
  INIT();
  AROUND(before_new_name(nfd, path), real_symlinkat(target, nfd, path), r != 0)
}

int symlink(const char *target, const char *path) { return symlinkat(target, AT_FDCWD, path); }
