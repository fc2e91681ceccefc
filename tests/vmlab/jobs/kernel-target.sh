#!/bin/sh
# vmlab job: the kernel's NVMe/TCP target (nvmet) on 10.0.2.15:4420 serving a
# RAM disk that keeps data (brd, 16 MiB, 512 B blocks), for a corepath host
# on the other side of the port forward. Writes READY when serving, waits for
# the host to write HOSTDONE (or WAIT_S seconds), then saves dmesg.
# Environment from /mnt/host/job.env: NQN, WAIT_S.
H=/mnt/host
. $H/job.env
set -e
modprobe brd rd_nr=1 rd_size=16384
modprobe nvmet
modprobe nvmet-tcp
C=/sys/kernel/config/nvmet
mkdir $C/subsystems/$NQN
echo 1 > $C/subsystems/$NQN/attr_allow_any_host
mkdir $C/subsystems/$NQN/namespaces/1
echo /dev/ram0 > $C/subsystems/$NQN/namespaces/1/device_path
echo 1 > $C/subsystems/$NQN/namespaces/1/enable
mkdir $C/ports/1
echo tcp > $C/ports/1/addr_trtype
echo ipv4 > $C/ports/1/addr_adrfam
echo 10.0.2.15 > $C/ports/1/addr_traddr
echo 4420 > $C/ports/1/addr_trsvcid
ln -s $C/subsystems/$NQN $C/ports/1/subsystems/$NQN
set +e
echo "kernel $(uname -r); nvmet serving $NQN on /dev/ram0 ($(blockdev --getsize64 /dev/ram0) bytes)"
touch $H/READY
i=0
while [ ! -e $H/HOSTDONE ] && [ $i -lt "$WAIT_S" ]; do sleep 1; i=$((i+1)); done
echo "host done after ${i} s"
dmesg > $H/dmesg.txt
[ -e $H/HOSTDONE ]
