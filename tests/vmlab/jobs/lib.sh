# Shared by the vmlab jobs that run corepath-tgt in the guest (sourced).
# The binaries come from the host's target/release through the 9p share
# (same Debian 12 libraries on both sides).
H=/mnt/host
FAILS=0
SOCK=/tmp/corepath.sock
R="$H/corepath-rpc -s $SOCK -t 20"
step() { echo; echo "=== $* (t=$(cut -d' ' -f1 /proc/uptime) s)"; }
ok() { echo "CHECK ok: $*"; }
fail() { echo "CHECK FAIL: $*"; FAILS=$((FAILS+1)); }
# check DESCRIPTION COMMAND...: runs it, prints its output, counts a failure.
check() { d="$1"; shift; if "$@"; then ok "$d"; else fail "$d (rc=$?)"; fi; }

# start_gateway [-c CONFIG]: corepath-tgt on one core, yielding when idle
# (the guest has 2 vCPUs shared with the kernel host and fio).
start_gateway() {
  "$H/corepath-tgt" -m 0x1 -r $SOCK --idle adaptive "$@" >> /tmp/tgt.log 2>&1 &
  TGT_PID=$!
  i=0
  until $R spdk_get_version > /dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 100 ] && { fail "corepath-tgt answers RPC"; cat /tmp/tgt.log; return 1; }
    sleep 0.2
  done
  echo "corepath-tgt pid $TGT_PID up"
}

stop_gateway() {
  kill -TERM $TGT_PID 2>/dev/null
  i=0; while kill -0 $TGT_PID 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
  kill -KILL $TGT_PID 2>/dev/null
  wait $TGT_PID 2>/dev/null
}

# configure_gateway: the DESIGN.md sequence with a 64 MiB malloc namespace.
configure_gateway() {
  $R nvmf_create_transport -t TCP -m 64 &&
  $R bdev_malloc_create -b Malloc0 64 512 &&
  $R nvmf_create_subsystem "$NQN" -a -s "$SERIAL" -i "$MIN_CNTLID" -I "$MAX_CNTLID" &&
  $R nvmf_subsystem_add_ns "$NQN" Malloc0 &&
  $R nvmf_subsystem_add_listener "$NQN" -t tcp -a 10.0.2.15 -s 4420 &&
  $R nvmf_subsystem_add_listener discovery -t tcp -a 10.0.2.15 -s 4420
}

# wait_dev: waits for the connected controller (CTRL, e.g. nvme0) and its
# namespace block device (DEV: the multipath head /dev/nvmeXn1 under the
# subsystem, not the hidden per-path nvmeXcYn1).
wait_dev() {
  i=0
  while [ $i -lt 150 ]; do
    for c in /sys/class/nvme/nvme*; do
      [ "$(cat $c/subsysnqn 2>/dev/null)" = "$NQN" ] || continue
      CTRL=$(basename $c)
      for s in /sys/class/nvme-subsystem/nvme-subsys*; do
        [ "$(cat $s/subsysnqn 2>/dev/null)" = "$NQN" ] || continue
        n=$(ls -d $s/nvme*n1 2>/dev/null | head -1)
        [ -n "$n" ] && DEV=/dev/$(basename $n) && [ -b "$DEV" ] && return 0
      done
    done
    sleep 0.2; i=$((i+1))
  done
  return 1
}

# fio_verify BS SIZE: random writes of BS over SIZE at iodepth 32, then
# reads everything back and checks crc32c.
fio_verify() {
  fio --name="verify-$1" --filename="$DEV" --rw=randwrite --bs="$1" --size="$2" --iodepth=32 \
    --ioengine=libaio --direct=1 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 \
    --group_reporting > /tmp/fio.out 2>&1
  rc=$?
  grep -E 'err=|write:|read:|verify|bad' /tmp/fio.out
  [ $rc -eq 0 ] && grep -q 'err= 0' /tmp/fio.out
}

finish() {
  step dmesg
  dmesg > $H/dmesg.txt
  grep -iE 'nvme' $H/dmesg.txt | tail -40
  echo; echo "=== corepath-tgt log"; cat /tmp/tgt.log
  echo "FAILS=$FAILS"
  [ $FAILS -eq 0 ]
}
