#!/bin/busybox sh
# PID 1 of the test guest (test/support/qemu.ts). Brings up what an NFS client needs, runs
# /guest/script.sh with its output on the second serial port (ttyS1) between markers the host
# looks for, then powers off. The kernel's own messages stay on ttyS0, so they never interleave
# with the transcript. Whatever happens, the guest ends: a failed setup powers off, and if this
# script itself died the kernel would panic, which panic=-1 with QEMU's -no-reboot turns into exit.

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /mnt

out=/dev/ttyS1

setup_failed() {
  echo "setup failed: $*"
  echo "=====CAIRN-GUEST-SETUP-FAILED $*=====" > $out
  poweroff -f
  exit 1
}

# Modules in dependency order, one name a line (written by the host from modules.dep).
while read -r m; do
  insmod "/lib/modules/guest/$m.ko" || setup_failed "insmod $m"
done < /etc/guest-modules

ip link set lo up || setup_failed "lo up"
ip link set eth0 up || setup_failed "eth0 up"
ip addr add 10.0.2.15/24 dev eth0 || setup_failed "eth0 address"
ip route add default via 10.0.2.2 || setup_failed "default route"

# The first packets would be lost while the emulated link trains: wait for carrier (bounded).
n=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ]; do
  n=$((n + 1))
  [ $n -gt 200 ] && setup_failed "eth0 has no carrier"
  usleep 20000
done

read -r up _ < /proc/uptime
echo "=====CAIRN-GUEST-BEGIN uptime=$up=====" > $out
cd /guest
sh /guest/script.sh > $out 2>&1 < /dev/null
status=$?
read -r up _ < /proc/uptime
echo "=====CAIRN-GUEST-END status=$status uptime=$up=====" > $out
poweroff -f
