#!/bin/sh
# vmlab job: the Linux kernel's native NVMe multipath across two corepath
# gateways (issue 5, acceptance 7). Two corepath-tgt processes in the guest,
# A on ADDR_A and B on ADDR_B (loopback aliases), export one file (AIO,
# O_DIRECT, on the guest's ext4 root) as the same namespace (same UUID) in
# the same subsystem (same NQN and serial), ANA reporting on, controller IDs
# 1-32760 on A and 32761-65519 on B. The kernel host connects to both: one
# subsystem, two live paths, one block device. fio runs in rounds (randwrite
# of FIO_SIZE with crc32c, then every block read back and checked; bounded by
# size, not time) from before the first event until after the last one,
# while (1) A's listener is set inaccessible (IO moves to B), (2) A is set
# optimized again, (3) A is SIGKILLed (IO moves to B). Every round must end
# with exit 0, err=0 and every block verified. Rounds, not one long fio: the
# events take a variable time under TCG, and a round in flight when they
# happen is the point; a stop marker ends the loop after the last event.
#
# Besides job.log (CHECK lines), it writes into the share, for the Rust test:
#   multipath.txt                 /sys/module/nvme_core/parameters/multipath
#   list-subsys-connected.txt     nvme list-subsys right after both connects
#   list-subsys-inaccessible.txt  ... once the host saw A inaccessible
#   list-subsys-killed.txt        ... once the host saw A's controller go
#   ana-log-{A,B}-{connected,inaccessible}.txt  nvme ana-log of each controller
#   ana-state-inaccessible.txt    sysfs ana_state of each path, "A=... B=..."
#   block-devices.txt             the subsystem's namespace block devices
#   path-io.txt                   per-path IO counts (reads + writes) at each step
#   fio.txt                       every fio round's output; fio.rc one exit status a line
# Environment from /mnt/host/job.env: NQN SERIAL NS_UUID ADDR_A ADDR_B NS_MIB
# FIO_BS FIO_SIZE.
. /mnt/host/job.env
. /mnt/host/lib.sh
echo "kernel $(uname -r); $(nvme version | head -1); $(fio --version)"
modprobe nvme-tcp
mp=$(cat /sys/module/nvme_core/parameters/multipath 2>/dev/null)
echo "$mp" > $H/multipath.txt
check "nvme_core native multipath is on (multipath=$mp)" test "$mp" = Y

AIO_FILE=/var/tmp/corepath-shared-ns.img
FIO_PID=""

# The binaries run from the guest's tmpfs, not from the 9p share.
BIN=/tmp/bin
mkdir -p $BIN && cp "$H/corepath-tgt" "$H/corepath-rpc" $BIN/
# gw NAME ARGS...: corepath-rpc against gateway NAME (A or B).
gw() { n=$1; shift; $BIN/corepath-rpc -s /tmp/gw-$n.sock -t 20 "$@"; }

# gw_start NAME CPUMASK: starts that gateway (one core, yielding when idle:
# the guest's 2 vCPUs also run the kernel host and fio); sets GW_PID_NAME.
gw_start() {
  $BIN/corepath-tgt -m "$2" -r /tmp/gw-$1.sock --idle adaptive >> /tmp/tgt-$1.log 2>&1 &
  eval "GW_PID_$1=$!"
  i=0
  until gw $1 spdk_get_version > /dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 100 ] && { fail "gateway $1 answers RPC"; cat /tmp/tgt-$1.log; return 1; }
    sleep 0.2
  done
  echo "gateway $1 pid $!, cpumask $2"
}

# gw_config NAME ADDR MIN_CNTLID MAX_CNTLID: the DESIGN.md gateway sequence
# with the shared file in place of the RBD image, ANA reporting on.
gw_config() {
  gw $1 nvmf_create_transport -t TCP -m 64 &&
  gw $1 call bdev_aio_create \
    "{\"name\":\"aio0\",\"filename\":\"$AIO_FILE\",\"block_size\":4096,\"uuid\":\"$NS_UUID\"}" &&
  gw $1 nvmf_create_subsystem "$NQN" -a -s "$SERIAL" -i $3 -I $4 -r &&
  gw $1 nvmf_subsystem_add_ns "$NQN" aio0 &&
  gw $1 nvmf_subsystem_add_listener "$NQN" -t tcp -a $2 -s 4420
}

# set_ana NAME ADDR STATE: that gateway's listener (and so its controllers) in STATE.
set_ana() {
  gw $1 call nvmf_subsystem_listener_set_ana_state "{\"nqn\":\"$NQN\",\"listen_address\":\
{\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"$2\",\"trsvcid\":\"4420\"},\"ana_state\":\"$3\"}"
}

# ctrl_of ADDR: the kernel controller (nvmeN) connected to ADDR.
ctrl_of() {
  for c in /sys/class/nvme/nvme*; do
    [ "$(cat $c/subsysnqn 2>/dev/null)" = "$NQN" ] || continue
    case "$(cat $c/address 2>/dev/null)" in *"traddr=$1,"*) basename $c; return 0;; esac
  done
  return 1
}

# path_of CTRL: the sysfs directory of that controller's path to namespace 1
# (the hidden nvmeXcYn1 under the multipath head).
path_of() { ls -d /sys/class/nvme/$1/nvme*c*n1 2>/dev/null | head -1; }
# ios_of CTRL: reads + writes completed on that path (fields 1 and 5 of its block stat).
ios_of() { p=$(path_of $1); [ -n "$p" ] && awk '{print $1 + $5}' $p/stat || echo 0; }
ana_of() { p=$(path_of $1); cat $p/ana_state 2>/dev/null || echo none; }
# wait_ana CTRL STATE: up to 30 s for the host to see that path in STATE.
wait_ana() {
  i=0; while [ "$(ana_of $1)" != "$2" ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
  echo "path $1 ana_state $(ana_of $1) after $((i/5)).$((i%5*2)) s"
  [ "$(ana_of $1)" = "$2" ]
}
path_io() { echo "$1: A($CA)=$(ios_of $CA) B($CB)=$(ios_of $CB)" | tee -a $H/path-io.txt; }
# io_moves_to CTRL OTHER: from a second after the change (IOs in flight on the
# old path may still complete) until CTRL's path has completed IOs (at most
# 15 s: there is a pause between fio rounds), OTHER's path completes none.
io_moves_to() {
  sleep 1
  a0=$(ios_of $1); b0=$(ios_of $2); i=0
  while [ $i -lt 15 ]; do sleep 1; i=$((i+1)); a1=$(ios_of $1); [ $((a1-a0)) -gt 100 ] && break; done
  b1=$(ios_of $2)
  echo "over $i s: $1 +$((a1-a0)) IOs, $2 +$((b1-b0)) IOs"
  [ $((a1-a0)) -gt 0 ] && [ $((b1-b0)) -eq 0 ]
}
# io_on_both: within 15 s, both paths complete IOs (round-robin policy).
io_on_both() {
  a0=$(ios_of $CA); b0=$(ios_of $CB); i=0
  while [ $i -lt 15 ]; do
    sleep 1; i=$((i+1)); a1=$(ios_of $CA); b1=$(ios_of $CB)
    [ $((a1-a0)) -gt 0 ] && [ $((b1-b0)) -gt 0 ] && break
  done
  echo "over $i s: A +$((a1-a0)) IOs, B +$((b1-b0)) IOs"
  [ $((a1-a0)) -gt 0 ] && [ $((b1-b0)) -gt 0 ]
}
fio_running() { kill -0 "$FIO_PID" 2>/dev/null; }
# fio_rounds: verified fio rounds until /tmp/fio.stop exists (at least one).
fio_rounds() {
  n=0
  while :; do
    n=$((n+1)); echo "=== fio round $n" >> $H/fio.txt
    fio --name=multipath-$n --filename="$DEV" --rw=randwrite --bs=$FIO_BS --size=$FIO_SIZE --iodepth=32 \
      --ioengine=libaio --direct=1 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 \
      --group_reporting >> $H/fio.txt 2>&1
    echo $? >> $H/fio.rc
    [ -e /tmp/fio.stop ] && break
  done
}
# list_subsys NAME [DEV]: nvme list-subsys (with DEV: that namespace's paths and their ANA states).
list_subsys() { nvme list-subsys $2 > $H/list-subsys-$1.txt 2>&1; cat $H/list-subsys-$1.txt; }
ana_logs() {
  nvme ana-log /dev/$CA > $H/ana-log-A-$1.txt 2>&1; echo "--- ana-log A ($CA, $1)"; cat $H/ana-log-A-$1.txt
  nvme ana-log /dev/$CB > $H/ana-log-B-$1.txt 2>&1; echo "--- ana-log B ($CB, $1)"; cat $H/ana-log-B-$1.txt
}
cleanup() {
  [ -n "$FIO_PID" ] && kill -KILL $FIO_PID 2>/dev/null
  nvme disconnect -n "$NQN" > /dev/null 2>&1
  for n in A B; do eval "p=\$GW_PID_$n"; [ -n "$p" ] && kill -KILL $p 2>/dev/null; done
  for n in A B; do echo "=== corepath-tgt $n log"; cat /tmp/tgt-$n.log 2>/dev/null; done
}
bail() { fail "$1"; cleanup; finish; exit 1; }

step shared file
# ADDR_A and ADDR_B are in 127.0.0.0/8, local on lo without configuration.
echo "file system of $(dirname $AIO_FILE): $(stat -f -c %T $(dirname $AIO_FILE))"
truncate -s ${NS_MIB}M $AIO_FILE || bail "create $AIO_FILE"
ls -l $AIO_FILE

step start gateways A on $ADDR_A and B on $ADDR_B
gw_start A 0x1 || bail "gateway A starts"
gw_start B 0x2 || bail "gateway B starts"
check "gateway A configured (cntlid 1-32760, ANA reporting)" gw_config A $ADDR_A 1 32760
step configure B
check "gateway B configured (cntlid 32761-65519, ANA reporting)" gw_config B $ADDR_B 32761 65519
gw A call nvmf_subsystem_get_listeners "{\"nqn\":\"$NQN\"}"

step connect to both
t0=$(cut -d' ' -f1 /proc/uptime)
for a in $ADDR_A $ADDR_B; do
  nvme connect -t tcp -a $a -s 4420 -n "$NQN" --keep-alive-tmo=5 --reconnect-delay=1 --ctrl-loss-tmo=30; rc=$?
  check "nvme connect $a" test $rc -eq 0
done
wait_dev || bail "block device appears"
CA=$(ctrl_of $ADDR_A); CB=$(ctrl_of $ADDR_B)
[ -n "$CA" ] && [ -n "$CB" ] || bail "a controller for each address (A=$CA B=$CB)"
i=0; while [ -z "$(path_of $CB)" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
echo "A: $CA $(cat /sys/class/nvme/$CA/cntlid 2>/dev/null) path $(path_of $CA); B: $CB path $(path_of $CB); device $DEV"
check "A's cntlid $(cat /sys/class/nvme/$CA/cntlid) in 1-32760" test "$(cat /sys/class/nvme/$CA/cntlid)" -le 32760
check "B's cntlid $(cat /sys/class/nvme/$CB/cntlid) in 32761-65519" test "$(cat /sys/class/nvme/$CB/cntlid)" -ge 32761
list_subsys connected
check "list-subsys: one subsystem $NQN" test "$(grep -c "NQN=$NQN" $H/list-subsys-connected.txt)" -eq 1
check "list-subsys: two live tcp paths" test "$(grep -c ' tcp .* live' $H/list-subsys-connected.txt)" -eq 2
list_subsys dev-connected $DEV
ls /sys/class/nvme-subsystem/*/ | grep -E '^nvme[0-9]+n[0-9]+$' | sort -u > $H/block-devices.txt
ls -l /dev/nvme* | tee -a $H/block-devices.txt
check "one namespace block device for the subsystem" test "$(grep -cE '^nvme[0-9]+n[0-9]+$' $H/block-devices.txt)" -eq 1
check "both paths optimized (A $(ana_of $CA), B $(ana_of $CB))" test "$(ana_of $CA) $(ana_of $CB)" = "optimized optimized"
ana_logs connected
# round-robin: with the default (numa) the host keeps one current path while
# it stays optimized, so A might carry no IO when it is killed; round-robin
# puts IO on every optimized path, so A dies with IOs in flight.
SUBSYS=""
for s in /sys/class/nvme-subsystem/nvme-subsys*; do
  [ "$(cat $s/subsysnqn)" = "$NQN" ] && echo round-robin > $s/iopolicy && SUBSYS=$s
done
echo "iopolicy $(cat $SUBSYS/iopolicy) ($SUBSYS)"
check "iopolicy round-robin" test "$(cat $SUBSYS/iopolicy)" = round-robin

step fio rounds of $FIO_BS randwrite over $FIO_SIZE with crc32c verify, in the background
: > $H/fio.txt; : > $H/fio.rc; rm -f /tmp/fio.stop
fio_rounds &
FIO_PID=$!
i=0; while [ $(( $(ios_of $CA) + $(ios_of $CB) )) -eq 0 ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done
path_io "fio started"
check "fio running, IO on both paths" io_on_both

step "(1) A's listener inaccessible"
set_ana A $ADDR_A inaccessible; check "set_ana_state A inaccessible" test $? -eq 0
check "host sees A inaccessible" wait_ana $CA inaccessible
echo "A=$(ana_of $CA) B=$(ana_of $CB)" | tee $H/ana-state-inaccessible.txt
check "fio still running when A went inaccessible" fio_running
check "IO goes to B only while A is inaccessible" io_moves_to $CB $CA
path_io "A inaccessible"
list_subsys inaccessible $DEV
ana_logs inaccessible

step "(2) A optimized again"
set_ana A $ADDR_A optimized; check "set_ana_state A optimized" test $? -eq 0
check "host sees A optimized again" wait_ana $CA optimized
check "fio still running when A came back" fio_running
check "IO on both paths again once A is optimized" io_on_both
path_io "A optimized again"

step "(3) SIGKILL gateway A"
check "fio still running before A is killed" fio_running
check "A carries IO right before the kill" io_on_both
kill -KILL $GW_PID_A; wait $GW_PID_A 2>/dev/null
t_kill=$(cut -d' ' -f1 /proc/uptime)
i=0; while [ "$(cat /sys/class/nvme/$CA/state 2>/dev/null)" = live ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
echo "A's controller state $(cat /sys/class/nvme/$CA/state 2>/dev/null) after $((i/5)).$((i%5*2)) s"
check "host noticed A is gone" test "$(cat /sys/class/nvme/$CA/state 2>/dev/null)" != live
list_subsys killed $DEV
check "list-subsys: one live path after the kill" test "$(grep -c ' tcp .* live' $H/list-subsys-killed.txt)" -eq 1
check "B's path is the live one" grep -q "traddr=$ADDR_B.* live" $H/list-subsys-killed.txt
check "fio still running after A's kill" fio_running
check "IO goes to B only after A's kill" io_moves_to $CB $CA
path_io "A killed"

step wait for the fio round in flight
touch /tmp/fio.stop
wait $FIO_PID; FIO_PID=""
rounds=$(grep -c '^=== fio round' $H/fio.txt)
echo "$rounds fio rounds, exit statuses: $(tr '\n' ' ' < $H/fio.rc); the last ended \
$(awk -v k=$t_kill '{print $1 - k}' /proc/uptime) s after A's kill"
grep -E '^=== fio round|err=|IOPS|verify|bad' $H/fio.txt
check "every fio round exits 0" sh -c "[ \$(grep -c . $H/fio.rc) -eq $rounds ] && ! grep -qv '^0\$' $H/fio.rc"
check "every fio round reports err=0" test "$(grep -c 'err= 0' $H/fio.txt)" -eq "$rounds"
check "fio verified (no verify errors)" sh -c "! grep -qiE 'verify: bad|verify failed|bad magic|bad header' $H/fio.txt"

step disconnect, stop B
nvme disconnect -n "$NQN" > /tmp/dis.out 2>&1; rc=$?; cat /tmp/dis.out
check "nvme disconnect" test $rc -eq 0
sleep 1
check "no controller left" sh -c "! ls /sys/class/nvme/ | grep -q nvme"
kill -TERM $GW_PID_B
i=0; while kill -0 $GW_PID_B 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
check "gateway B stops on SIGTERM" sh -c "! kill -0 $GW_PID_B 2>/dev/null"
cleanup
finish
