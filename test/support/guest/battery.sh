#!/bin/sh
# The POSIX battery for NFS servers, run by busybox sh in the test guest against the Linux kernel's
# NFSv3 client: sh battery.sh MOUNTPOINT, with NFS_SOURCE (server:/export) and NFS_OPTS (mount
# options) in the environment.
#
# Every step prints one line, "step: result", where the result is "ok", a deterministic value
# (a mode, a link count, a size) or the error text of a call that must fail; a step that went
# wrong prints "step: FAIL why". Nothing printed depends on inode numbers, times, random data or
# the server, so the transcripts of two servers compare line by line. Progress with timings goes
# to the kernel console, not the transcript. Exit status: 0 when no step failed.

MNT=${1:-/mnt}
B=$MNT/battery
failures=0
umask 022
export TZ=UTC

say() { echo "$1: $2"; }
bad() {
  echo "$1: FAIL $2"
  failures=$((failures + 1))
}
phase() {
  read -r up _ < /proc/uptime
  echo "battery [$up] $1" > /dev/console
}

# value STEP EXPECTED ACTUAL
value() {
  if [ "$3" = "$2" ]; then say "$1" "$3"; else bad "$1" "got '$3', expected '$2'"; fi
}
# same STEP A B: two things that must be equal but are not printed (checksums)
same() {
  if [ "$2" = "$3" ]; then say "$1" ok; else bad "$1" "'$2' differs from '$3'"; fi
}
# ok STEP COMMAND...: the command must succeed
ok() {
  n=$1
  shift
  if o=$("$@" 2>&1); then say "$n" ok; else bad "$n" "$(printf '%s' "$o" | tr '\n' ' ' | tail -c 300)"; fi
}
# refused STEP ERROR COMMAND...: the command must fail with ERROR (the text after its last ': ')
refused() {
  n=$1
  want=$2
  shift 2
  if o=$("$@" 2>&1); then
    bad "$n" "succeeded, expected '$want'"
  else
    value "$n" "$want" "$(printf '%s\n' "$o" | tail -n 1 | sed 's/.*: //')"
  fi
}

# digest FILE [OFFSET [LENGTH]]: a local file's (or cached) bytes
digest() {
  dd if="$1" iflag=skip_bytes,count_bytes bs=1048576 skip="${2:-0}" ${3:+count=$3} 2> /dev/null |
    sha256sum | cut -d' ' -f1
}
# served FILE [OFFSET [LENGTH]]: the bytes as the server has them (O_DIRECT bypasses the page
# cache: written data is flushed, and the read goes to the server)
served() {
  dd if="$1" iflag=direct,skip_bytes,count_bytes bs=1048576 skip="${2:-0}" ${3:+count=$3} 2> /dev/null |
    sha256sum | cut -d' ' -f1
}
zeros() { dd if=/dev/zero iflag=count_bytes bs=1048576 count="$1" 2> /dev/null | sha256sum | cut -d' ' -f1; }
# Forget every cached page, attribute and name, so that what is listed next comes from the server.
uncache() {
  sync
  echo 3 > /proc/sys/vm/drop_caches
}
repeat() {
  # repeat N CHAR: CHAR N times
  head -c "$1" /dev/zero | tr '\0' "$2"
}

do_mount() { mount -t nfs -o "$NFS_OPTS" "$NFS_SOURCE" "$MNT"; }
# The client's per-procedure counts, round-trip and execution times (ms) for this mount so far,
# to the console: how much each server made the client do.
rpc_stats() {
  awk '$1 ~ /^[A-Z_0-9]+:$/ && $2 > 0 { sub(":", "", $1); print "battery-rpc", $1, $2, $8, $9 }' \
    /proc/self/mountstats > /dev/console
}

# --- mount ----------------------------------------------------------------------------------
phase mount
if ! o=$(do_mount 2>&1); then
  bad mount "$o"
  echo "battery: FAILED (cannot mount)"
  exit 1
fi
say mount ok
value mount-vers "vers=3" "$(grep " $MNT nfs " /proc/mounts | tr ',' '\n' | grep '^vers=')"
value statfs-namelen 255 "$(stat -f -c %l "$MNT")"
rm -rf "$B"
ok mkdir-root mkdir "$B"
value mkdir-mode 755 "$(stat -c %a "$B")"
value dir-nlink-empty 2 "$(stat -c %h "$B")"

# --- small files --------------------------------------------------------------------------
phase small
echo "hello, world" > "$B/small"
value small-read "hello, world" "$(cat "$B/small")"
value small-size 13 "$(stat -c %s "$B/small")"
value create-mode 644 "$(stat -c %a "$B/small")"
value create-owner "0 0" "$(stat -c '%u %g' "$B/small")"
value create-type "regular file" "$(stat -c %F "$B/small")"
true > "$B/empty"
value empty-size 0 "$(stat -c %s "$B/empty")"
printf x > "$B/one"
value one-byte "x" "$(cat "$B/one")"
echo "replaced" > "$B/small"
value overwrite-truncates 9 "$(stat -c %s "$B/small")"
# noclobber makes the shell create with O_EXCL: NFS CREATE in EXCLUSIVE mode.
ok create-exclusive sh -c "set -C; echo excl > '$B/excl'"
value create-exclusive-mode 644 "$(stat -c %a "$B/excl")"
refused create-exclusive-exists "File exists" sh -c "set -C; echo again > '$B/excl'"
value create-exclusive-content "excl" "$(cat "$B/excl")"
refused open-missing "No such file or directory" cat "$B/missing"
refused lookup-through-file "Not a directory" cat "$B/small/x"
name255=$(repeat 255 n)
ok name-255 sh -c "echo long > '$B/$name255'"
value name-255-read long "$(cat "$B/$name255")"
refused name-256 "File name too long" sh -c "echo long > '$B/${name255}m'"
ok name-255-remove rm "$B/$name255"

# --- a directory of 3,000 entries -------------------------------------------------------------
phase many-create
mkdir "$B/many"
i=0
while [ $i -lt 3000 ]; do
  true > "$B/many/f$i" || break
  i=$((i + 1))
done
value many-create 3000 "$i"
phase many-list
value many-count 3000 "$(ls "$B/many" | wc -l)"
i=0
while [ $i -lt 3000 ]; do
  echo "f$i"
  i=$((i + 1))
done | sort > /tmp/many.want
ls "$B/many" | sort > /tmp/many.got
same many-names "$(digest /tmp/many.want)" "$(digest /tmp/many.got)"
uncache
value many-count-uncached 3000 "$(ls -A "$B/many" | wc -l)"
value many-stat "regular empty file 0" "$(stat -c '%F %s' "$B/many/f2999")"
phase many-remove
ok many-remove sh -c "cd '$B/many' && rm -f f*"
value many-empty 0 "$(ls -A "$B/many" | wc -l)"
ok many-rmdir rmdir "$B/many"

# --- large files: written, read back from the server, compared ------------------------------
phase large-generate
dd if=/dev/urandom of=/tmp/big bs=1048576 count=20 2>/dev/null
head -c 1048577 /dev/urandom > /tmp/odd
big_sum=$(digest /tmp/big)
odd_sum=$(digest /tmp/odd)
phase large-write
ok large-write cp /tmp/big "$B/big"
ok odd-write cp /tmp/odd "$B/odd"
value large-size 20971520 "$(stat -c %s "$B/big")"
value odd-size 1048577 "$(stat -c %s "$B/odd")"
phase large-read
same large-read "$big_sum" "$(served "$B/big")"
same odd-read "$odd_sum" "$(served "$B/odd")"

# --- in-place writes, append, truncate: each done to a copy in RAM too, then compared ---------
phase modify
cp /tmp/odd /tmp/mod
cp /tmp/odd "$B/mod"
head -c 5000 /dev/urandom > /tmp/patch
# An unaligned write straddling page boundaries.
dd if=/tmp/patch of=/tmp/mod bs=5000 seek=60 conv=notrunc 2>/dev/null
ok write-middle dd if=/tmp/patch of="$B/mod" bs=5000 seek=60 conv=notrunc
cat /tmp/patch >> /tmp/mod
ok append-large sh -c "cat /tmp/patch >> '$B/mod'"
value modified-size 1053577 "$(stat -c %s "$B/mod")"
same modified-read "$(digest /tmp/mod)" "$(served "$B/mod")"

printf 'a\n' > "$B/app"
printf 'b\n' >> "$B/app"
printf 'c\n' >> "$B/app"
value append "a b c" "$(cat "$B/app" | tr '\n' ' ' | sed 's/ $//')"
value append-size 6 "$(stat -c %s "$B/app")"

cp /tmp/odd "$B/trunc"
ok truncate-shrink truncate -s 100000 "$B/trunc"
value truncate-shrink-size 100000 "$(stat -c %s "$B/trunc")"
ok truncate-grow truncate -s 300000 "$B/trunc"
value truncate-grow-size 300000 "$(stat -c %s "$B/trunc")"
same truncate-kept "$(digest /tmp/odd 0 100000)" "$(served "$B/trunc" 0 100000)"
same truncate-grown-zeros "$(zeros 200000)" "$(served "$B/trunc" 100000)"
ok truncate-zero truncate -s 0 "$B/trunc"
value truncate-zero-size 0 "$(stat -c %s "$B/trunc")"

# A hole of 10 MiB before 4 KiB of data: the hole reads as zeros.
ok sparse-write dd if=/tmp/patch of="$B/sparse" bs=4096 count=1 seek=2560
value sparse-size 10489856 "$(stat -c %s "$B/sparse")"
same sparse-hole "$(zeros 10485760)" "$(served "$B/sparse" 0 10485760)"
same sparse-data "$(digest /tmp/patch 0 4096)" "$(served "$B/sparse" 10485760)"

# --- times and ownership ------------------------------------------------------------------
phase attributes
ok utime touch -d '2001-02-03 04:05:06' "$B/app"
value utime-mtime 981173106 "$(stat -c %Y "$B/app")"
ok chown chown 1000:1000 "$B/one"
value chown-owner "1000 1000" "$(stat -c '%u %g' "$B/one")"

# --- chmod ----------------------------------------------------------------------------------
ok chmod chmod 640 "$B/empty"
value chmod-mode 640 "$(stat -c %a "$B/empty")"
chmod 0 "$B/empty"
value chmod-none 0 "$(stat -c %a "$B/empty")"
chmod 4755 "$B/empty"
value chmod-setuid 4755 "$(stat -c %a "$B/empty")"
chmod 644 "$B/empty"
mkdir "$B/sticky"
ok chmod-sticky chmod 1777 "$B/sticky"
value chmod-sticky-mode 1777 "$(stat -c %a "$B/sticky")"
mkdir -m 700 "$B/private"
value mkdir-mode-700 700 "$(stat -c %a "$B/private")"

# --- rename -------------------------------------------------------------------------------
phase rename
echo r > "$B/r1"
ok rename-within mv "$B/r1" "$B/r2"
value rename-within-old "absent" "$([ -e "$B/r1" ] && echo present || echo absent)"
value rename-within-new r "$(cat "$B/r2")"
mkdir "$B/d1" "$B/d2"
echo x > "$B/d1/x"
ok rename-across mv "$B/d1/x" "$B/d2/y"
value rename-across-old "absent" "$([ -e "$B/d1/x" ] && echo present || echo absent)"
value rename-across-new x "$(cat "$B/d2/y")"
echo new > "$B/s"
echo old > "$B/t"
ln "$B/t" "$B/t.link"
ok rename-overwrite mv -f "$B/s" "$B/t"
value rename-overwrite-content new "$(cat "$B/t")"
value rename-overwrite-old-inode "old 1" "$(cat "$B/t.link") $(stat -c %h "$B/t.link")"
mkdir "$B/d1/sub"
echo z > "$B/d1/sub/z"
value dir-nlink-with-sub 3 "$(stat -c %h "$B/d1")"
ok rename-dir-across mv "$B/d1/sub" "$B/d2/sub"
value rename-dir-across-content z "$(cat "$B/d2/sub/z")"
value rename-dir-nlink "2 3" "$(stat -c %h "$B/d1") $(stat -c %h "$B/d2")"
mkdir "$B/e1" "$B/e2"
true > "$B/e2/f"
if o=$(mv -T "$B/e1" "$B/e2" 2>&1); then
  bad rename-onto-nonempty-dir "succeeded"
else
  # POSIX allows EEXIST or ENOTEMPTY here.
  case "$o" in
  *"Directory not empty"* | *"File exists"*) say rename-onto-nonempty-dir refused ;;
  *) bad rename-onto-nonempty-dir "$o" ;;
  esac
fi
rmdir "$B/e1"
mkdir "$B/e3"
ok rename-onto-empty-dir mv -T "$B/e2" "$B/e3"
value rename-onto-empty-dir-content "f" "$(ls "$B/e3")"
refused rename-dir-onto-file "Not a directory" mv -T "$B/e3" "$B/r2"
refused rename-missing "No such file or directory" mv "$B/missing" "$B/elsewhere"

# --- hard links -----------------------------------------------------------------------------
phase links
echo h > "$B/h1"
ok link ln "$B/h1" "$B/h2"
value link-count 2 "$(stat -c %h "$B/h1")"
echo more >> "$B/h2"
value link-shared "h more" "$(cat "$B/h1" | tr '\n' ' ' | sed 's/ $//')"
ok link-unlink rm "$B/h1"
value link-count-after-unlink 1 "$(stat -c %h "$B/h2")"
value link-survivor "h more" "$(cat "$B/h2" | tr '\n' ' ' | sed 's/ $//')"
refused link-exists "File exists" ln "$B/h2" "$B/r2"
refused link-dir "Operation not permitted" ln "$B/d1" "$B/d1-link"
ln "$B/h2" "$B/d2/h3"
value link-across-dirs 2 "$(stat -c %h "$B/h2")"

# --- symbolic links ---------------------------------------------------------------------------
ok symlink ln -s h2 "$B/sl"
value symlink-readlink h2 "$(readlink "$B/sl")"
value symlink-type "symbolic link" "$(stat -c %F "$B/sl")"
value symlink-follow "h more" "$(cat "$B/sl" | tr '\n' ' ' | sed 's/ $//')"
value symlink-target-type "regular file" "$(stat -L -c %F "$B/sl")"
ln -s d2/sub "$B/sldir"
value symlink-dir z "$(cat "$B/sldir/z")"
ln -s does/not/exist "$B/dangling"
value symlink-dangling does/not/exist "$(readlink "$B/dangling")"
refused symlink-dangling-open "No such file or directory" cat "$B/dangling"
long_target=$(repeat 1000 t)
ok symlink-long ln -s "$long_target" "$B/sllong"
same symlink-long-readlink "$long_target" "$(readlink "$B/sllong")"
refused symlink-exists "File exists" ln -s h2 "$B/sl"

# --- directories ----------------------------------------------------------------------------
phase directories
refused mkdir-exists "File exists" mkdir "$B/d1"
refused mkdir-missing-parent "No such file or directory" mkdir "$B/nope/x"
refused rmdir-nonempty "Directory not empty" rmdir "$B/d2"
refused rmdir-file "Not a directory" rmdir "$B/r2"
refused rmdir-missing "No such file or directory" rmdir "$B/nope"
refused unlink-dir "Is a directory" unlink "$B/d1"
ok mkdir-deep mkdir -p "$B/deep/a/b/c/d"
echo leaf > "$B/deep/a/b/c/d/leaf"
value deep-read leaf "$(cat "$B/deep/a/b/c/d/leaf")"
rm "$B/deep/a/b/c/d/leaf"
ok rmdir-empty rmdir "$B/deep/a/b/c/d"
ok remove-tree rm -r "$B/deep"
value remove-tree-gone absent "$([ -e "$B/deep" ] && echo present || echo absent)"

# --- unmount, mount again, and everything still there reads the same --------------------------
phase remount
# What is left: a description of every entry, with checksums kept apart from the transcript.
describe() {
  (
    cd "$B" || exit 1
    find . | sort | while read -r p; do
      if [ -L "$p" ]; then
        echo "$p symlink $(readlink "$p" | head -c 40)"
      elif [ -d "$p" ]; then
        echo "$p dir $(stat -c '%a %h %u %g' "$p")"
      else
        echo "$p file $(stat -c '%a %h %u %g %s' "$p")"
      fi
    done
  )
}
checksums() { (cd "$B" && find . -type f | sort | xargs sha256sum); }
describe > /tmp/tree.before
checksums > /tmp/sums.before
sync
rpc_stats
ok umount umount "$MNT"
value umount-gone absent "$(grep -q " $MNT nfs " /proc/mounts && echo present || echo absent)"
ok remount do_mount
describe > /tmp/tree.after
checksums > /tmp/sums.after
same reread-tree "$(digest /tmp/tree.before)" "$(digest /tmp/tree.after)"
same reread-data "$(digest /tmp/sums.before)" "$(digest /tmp/sums.after)"
sed 's/^/tree: /' /tmp/tree.after

# --- clean up ---------------------------------------------------------------------------------
phase cleanup
ok cleanup rm -rf "$B"
value cleanup-gone absent "$([ -e "$B" ] && echo present || echo absent)"
rpc_stats
ok final-umount umount "$MNT"
phase done

if [ $failures -eq 0 ]; then
  echo "battery: ok"
else
  echo "battery: FAILED $failures"
  exit 1
fi
