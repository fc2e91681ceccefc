#!/bin/sh
# vmlab job: the admin commands of issue 11 from the kernel's NVMe/TCP host
# (nvme-cli) against corepath-tgt in the guest: smart-log before and after
# known writes and reads, get-feature/set-feature 4 (temperature threshold)
# and 5 (error recovery), effects-log, and Identify CNS 06h through
# admin-passthru (nvme-cli 2.3 has no id-ctrl --cns). Each command's stdout,
# stderr and exit status go to the share as NAME.out, NAME.err, NAME.rc;
# binary pages as NAME.hex (od); tests/tests/kernel_admin.rs judges them.
# Environment from /mnt/host/job.env: NQN SERIAL MIN_CNTLID MAX_CNTLID.
. /mnt/host/job.env
. /mnt/host/lib.sh
echo "kernel $(uname -r); $(nvme version)"
modprobe nvme-tcp

# run NAME CMD...: runs CMD, keeps its output and exit status in the share.
run() {
  name="$1"; shift
  "$@" > "$H/$name.out" 2> "$H/$name.err"
  rc=$?
  echo "$rc" > "$H/$name.rc"
  echo "--- $name: $* (rc=$rc)"
  head -c 3000 "$H/$name.out"; cat "$H/$name.err"
  return $rc
}
# runb NAME CMD...: run for a command printing binary data (-b): the log
# shows its size; NAME.hex has its bytes as hex (od), one line.
runb() {
  name="$1"; shift
  "$@" > "$H/$name.out" 2> "$H/$name.err"
  rc=$?
  echo "$rc" > "$H/$name.rc"
  od -An -v -tx1 "$H/$name.out" | tr -s ' \n' '  ' > "$H/$name.hex"
  echo "--- $name: $* (rc=$rc): $(wc -c < "$H/$name.out") bytes"
  cat "$H/$name.err"
  return $rc
}

step start corepath-tgt
start_gateway || { finish; exit 1; }
check "gateway configured" configure_gateway

step connect
nvme connect -t tcp -a 10.0.2.15 -s 4420 -n "$NQN"; rc=$?
check "nvme connect" test $rc -eq 0
if ! wait_dev; then fail "block device appears"; stop_gateway; finish; exit 1; fi
ok "block device $DEV on $CTRL"
C=/dev/$CTRL

step "smart-log, 4 MiB written and 2 MiB read, smart-log"
check "smart-log before IO" run smart-before nvme smart-log $C
check "dd writes 4 MiB" dd if=/dev/urandom of=$DEV bs=1M count=4 oflag=direct
check "dd reads 2 MiB" dd if=$DEV of=/dev/null bs=1M count=2 iflag=direct
check "smart-log after IO" run smart-after nvme smart-log $C

step "get-feature / set-feature 4 (temperature threshold)"
check "get-feature -f 4" run feature4 nvme get-feature $C -f 4
run feature4-human nvme get-feature $C -f 4 -H
check "set-feature -f 4 -v 350 (composite over threshold, K)" run feature4-set nvme set-feature $C -f 4 -v 350
check "get-feature -f 4 after set" run feature4-after nvme get-feature $C -f 4
# Sensor 1 (TMPSEL 1h) is not implemented: refused.
run feature4-sensor1 nvme set-feature $C -f 4 -v 0x1015e
check "set-feature -f 4 on sensor 1 is refused" test "$(cat $H/feature4-sensor1.rc)" -ne 0

step "get-feature / set-feature 5 (error recovery)"
check "get-feature -f 5" run feature5 nvme get-feature $C -f 5
check "set-feature -f 5 -v 30 (TLER 3 s)" run feature5-set nvme set-feature $C -f 5 -v 30
check "get-feature -f 5 after set" run feature5-after nvme get-feature $C -f 5
run feature5-dulbe nvme set-feature $C -f 5 -v 0x10000
check "set-feature -f 5 with DULBE is refused" test "$(cat $H/feature5-dulbe.rc)" -ne 0

step effects-log
# Without --csi, nvme-cli 2.3 reads CAP from a PCI BAR to pick the command
# sets; a fabrics controller has none, so it exits 0 having printed nothing
# (nvme.c get_effects_log, v2.3). With --csi=0 it reads the NVM page.
check "effects-log (exits 0, prints nothing over fabrics)" run effects nvme effects-log $C
check "effects-log --csi=0" run effects-csi0 nvme effects-log $C --csi=0
check "effects-log --csi=0 -b" runb effects-bin nvme effects-log $C --csi=0 -b
run cap nvme get-property $C --offset=0 -H

step "Identify CNS 06h (admin-passthru)"
check "admin-passthru Identify CNS 06h CSI 00h" \
  runb cns6 nvme admin-passthru $C --opcode=0x06 --cdw10=0x6 --data-len=4096 -r -b
# The same structure for the zoned command set (CSI 02h, CDW11 bits 31:24): refused.
runb cns6-zns nvme admin-passthru $C --opcode=0x06 --cdw10=0x6 --cdw11=0x02000000 --data-len=4096 -r -b
check "CNS 06h for CSI 02h is refused" test "$(cat $H/cns6-zns.rc)" -ne 0

step disconnect
nvme disconnect -n "$NQN" > /tmp/dis.out 2>&1; rc=$?; cat /tmp/dis.out
check "nvme disconnect" sh -c "test $rc -eq 0 && grep -q 'disconnected 1 controller' /tmp/dis.out"
stop_gateway
finish
