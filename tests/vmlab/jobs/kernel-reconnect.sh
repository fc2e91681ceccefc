#!/bin/sh
# vmlab job: the kernel host's keep-alive and reconnect against corepath-tgt.
# Connect with a short keep-alive, reconnect delay 1 s and a 60 s
# controller-loss timeout; verified IO; stop the gateway; the host sees the
# link go (state leaves "live"); restart the gateway from its saved config;
# the host reconnects by itself and verified IO works again.
# Environment from /mnt/host/job.env: NQN SERIAL MIN_CNTLID MAX_CNTLID.
. /mnt/host/job.env
. /mnt/host/lib.sh
modprobe nvme-tcp
step start corepath-tgt
start_gateway || { finish; exit 1; }
check "gateway configured" configure_gateway
$R save_config > /tmp/gw.json || fail "save_config"
step connect
nvme connect -t tcp -a 10.0.2.15 -s 4420 -n "$NQN" --keep-alive-tmo=5 --reconnect-delay=1 --ctrl-loss-tmo=60
check "nvme connect with kato 5, reconnect-delay 1, ctrl-loss-tmo 60" test $? -eq 0
wait_dev || { fail "block device appears"; finish; exit 1; }
ok "block device $DEV on $CTRL"
check "fio 4k verify before the outage" fio_verify 4k 4M

step stop the gateway
stop_gateway
i=0; while [ "$(cat /sys/class/nvme/$CTRL/state)" = live ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
state=$(cat /sys/class/nvme/$CTRL/state)
echo "controller state after stop: $state"
check "host noticed the gateway is gone (state $state)" test "$state" != live
sleep 3
step restart the gateway from its saved config
start_gateway -c /tmp/gw.json || { finish; exit 1; }
i=0; while [ "$(cat /sys/class/nvme/$CTRL/state 2>/dev/null)" != live ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
state=$(cat /sys/class/nvme/$CTRL/state 2>/dev/null)
echo "controller state after restart: $state (waited $((i/5)) s)"
check "host reconnected by itself" test "$state" = live
check "same block device after reconnect" test -b "$DEV"
check "fio 4k verify after reconnect" fio_verify 4k 4M
check "fio 128k verify after reconnect" fio_verify 128k 8M
nvme disconnect -n "$NQN" > /tmp/dis.out 2>&1; rc=$?; cat /tmp/dis.out
check "nvme disconnect" test $rc -eq 0
stop_gateway
finish
