#!/usr/bin/env bash
# Boots the vmlab guest (built by build.sh) in the foreground; QEMU replaces
# this shell (exec), so the caller's child PID is QEMU's and killing it by PID
# stops the guest. The guest runs SHARE_DIR/job.sh (see guest-init.sh) and
# powers off; its serial console goes to SHARE_DIR/console.log.
#
# Usage: tests/vmlab/boot.sh GUEST_DIR SHARE_DIR [HOST_PORT]
#   GUEST_DIR  the directory build.sh printed
#   SHARE_DIR  host directory seen by the guest at /mnt/host (9p)
#   HOST_PORT  if given, 127.0.0.1:HOST_PORT on the host forwards to the
#              guest's 10.0.2.15:4420 (the only way in; nothing gets out)
set -euo pipefail
guest="$1"; share="$2"; port="${3:-}"
[ -f "$guest/READY" ] || { echo "vmlab-boot: $guest is not a built guest (run tests/vmlab/build.sh)" >&2; exit 2; }
fwd=""
[ -n "$port" ] && fwd=",hostfwd=tcp:127.0.0.1:${port}-10.0.2.15:4420"
# hardened_usercopy=off: with the kernel host and corepath-tgt in the same
# guest, nvme-tcp's zero-copy sends of 1 MiB writes reach our recvfrom over
# loopback as pages the usercopy check wrongly flags ("Kernel memory exposure
# attempt detected from page alloc"), a kernel BUG that kills the reactor
# thread. A loopback-only artefact of Debian's 6.1 kernel; see docs/interop.md.
# /dev/kvm exists on these machines but cannot run a guest (no VMX): TCG.
exec "$guest/qemu/usr/bin/qemu-system-x86_64" \
  -accel tcg,thread=multi -cpu max -smp 2 -m 2048 -machine q35 \
  -nodefaults -display none -no-reboot -monitor none \
  -serial "file:$share/console.log" \
  -kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 init=/init.sh net.ifnames=0 panic=-1 quiet hardened_usercopy=off" \
  -drive "file=$guest/rootfs.img,format=raw,if=virtio,cache=unsafe" -snapshot \
  -virtfs "local,path=$share,mount_tag=hostshare,security_model=none,id=hs" \
  -nic "user,model=virtio-net-pci,restrict=on,net=10.0.2.0/24${fwd}"
