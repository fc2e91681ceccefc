#!/bin/sh
# vmlab job: the kernel's NVMe/TCP host (nvme-cli, nvme-tcp) against
# corepath-tgt running in the guest on 10.0.2.15:4420. Discovery, connect,
# identify, fio with crc32c verification at 4K/128K/1M iodepth 32, clean
# disconnect; once without and once with header and data digests.
# Environment from /mnt/host/job.env: NQN SERIAL MIN_CNTLID MAX_CNTLID FIO_SIZES.
. /mnt/host/job.env
. /mnt/host/lib.sh
echo "kernel $(uname -r); $(nvme version); $(fio --version)"
modprobe nvme-tcp
step start corepath-tgt
start_gateway || { finish; exit 1; }
check "gateway configured" configure_gateway

step nvme discover
nvme discover -t tcp -a 10.0.2.15 -s 4420 > /tmp/disc.out 2>&1; rc=$?
cat /tmp/disc.out
check "nvme discover exits 0" test $rc -eq 0
check "discovery log lists $NQN" grep -q "subnqn: *$NQN" /tmp/disc.out
check "discovery log entry is tcp 10.0.2.15:4420" sh -c "grep -q 'trtype: *tcp' /tmp/disc.out && grep -q 'traddr: *10.0.2.15' /tmp/disc.out && grep -q 'trsvcid: *4420' /tmp/disc.out"

for digests in off on; do
  step "connect, digests $digests"
  flags=""
  [ $digests = on ] && flags="--hdr-digest --data-digest"
  nvme connect -t tcp -a 10.0.2.15 -s 4420 -n "$NQN" $flags; rc=$?
  check "nvme connect (digests $digests)" test $rc -eq 0
  if ! wait_dev; then fail "block device appears (digests $digests)"; continue; fi
  ok "block device $DEV on $CTRL"
  nvme list-subsys > /tmp/ls.out 2>&1; cat /tmp/ls.out
  check "list-subsys shows $NQN over tcp" sh -c "grep -q '$NQN' /tmp/ls.out && grep -q 'tcp traddr=10.0.2.15' /tmp/ls.out"
  nvme id-ctrl /dev/$CTRL > /tmp/idc.out 2>&1; cat /tmp/idc.out | head -40
  check "id-ctrl serial is $SERIAL" grep -qE "^sn +: $SERIAL *$" /tmp/idc.out
  check "id-ctrl subnqn is $NQN" grep -qE "^subnqn +: $NQN *$" /tmp/idc.out
  cntlid=$(awk -F: '/^cntlid/{gsub(/ /,"",$2); print $2}' /tmp/idc.out)
  cntlid=$((cntlid))
  check "cntlid $cntlid in [$MIN_CNTLID, $MAX_CNTLID]" test "$cntlid" -ge "$MIN_CNTLID" -a "$cntlid" -le "$MAX_CNTLID"
  nvme id-ns $DEV > /tmp/idn.out 2>&1; head -30 /tmp/idn.out
  check "id-ns nsze is 64 MiB of 512 B blocks" grep -qE "^nsze +: 0x20000 *$" /tmp/idn.out
  echo "transport state: $(cat /sys/class/nvme/$CTRL/state) address: $(cat /sys/class/nvme/$CTRL/address)"
  for bs_size in $FIO_SIZES; do
    bs=${bs_size%%:*}; size=${bs_size##*:}
    step "fio $bs verify over $size, iodepth 32, digests $digests"
    check "fio $bs crc32c verify (digests $digests)" fio_verify $bs $size
  done
  step "disconnect, digests $digests"
  nvme disconnect -n "$NQN" > /tmp/dis.out 2>&1; rc=$?; cat /tmp/dis.out
  check "nvme disconnect (digests $digests)" sh -c "test $rc -eq 0 && grep -q 'disconnected 1 controller' /tmp/dis.out"
  sleep 1
  check "controller gone after disconnect" sh -c "! test -e /sys/class/nvme/$CTRL"
done
stop_gateway
finish
