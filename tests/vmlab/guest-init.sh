#!/bin/sh
# PID 1 of the vmlab guest: mounts pseudo file systems and the host share
# (virtio-9p, tag "hostshare" at /mnt/host), sets eth0 to 10.0.2.15/24 (no
# DHCP; the network is QEMU's restricted user net), runs /mnt/host/job.sh with
# its output in /mnt/host/job.log and its exit status in /mnt/host/job.rc,
# then powers off. Without a job it starts a shell on the serial console.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
modprobe configfs; mount -t configfs none /sys/kernel/config
echo "vmlab-init: up at $(cut -d' ' -f1 /proc/uptime) s"
modprobe virtio_net
modprobe 9pnet_virtio; modprobe 9p
mkdir -p /mnt/host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostshare /mnt/host || echo "vmlab-init: 9p mount FAILED"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2 2>/dev/null
if [ -f /mnt/host/job.sh ]; then
  echo "vmlab-init: job start at $(cut -d' ' -f1 /proc/uptime) s"
  sh /mnt/host/job.sh > /mnt/host/job.log 2>&1
  rc=$?
  echo "$rc" > /mnt/host/job.rc
  echo "vmlab-init: job rc=$rc at $(cut -d' ' -f1 /proc/uptime) s"
else
  echo "vmlab-init: no job, shell on the console"
  setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'
fi
sync
echo o > /proc/sysrq-trigger
sleep 10
