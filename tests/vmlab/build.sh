#!/usr/bin/env bash
# Builds (or finds cached) the vmlab guest: a private QEMU 7.2 and a Debian 12
# guest image with the Linux kernel's NVMe-oF host/target, nvme-cli and fio.
# Everything comes from Debian packages; nothing is installed system-wide
# except a few shared libraries QEMU needs (--no-upgrade, so nothing else moves).
#
# Cache: ${COREPATH_VMLAB_CACHE:-/var/cache/corepath-vmlab}/<hash>, where <hash>
# covers this script and guest-init.sh: changing either rebuilds.
# Prints the cache directory on stdout (last line); logs go to stderr.
# Usage: tests/vmlab/build.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${COREPATH_VMLAB_CACHE:-/var/cache/corepath-vmlab}"
key="$(cat "$here/build.sh" "$here/guest-init.sh" | sha256sum | cut -c1-16)"
dest="$cache_root/$key"
log() { echo "vmlab-build: $*" >&2; }

if [ -f "$dest/READY" ]; then
  echo "$dest"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  # debootstrap and chroot need root.
  log "not root: re-running with sudo"
  exec sudo -E "$0" "$@"
fi
mkdir -p "$cache_root"
# One builder at a time (parallel test runs share the cache).
exec 9>"$cache_root/.lock"
flock 9
if [ -f "$dest/READY" ]; then echo "$dest"; exit 0; fi

t_start=$(date +%s)
work="$cache_root/$key.tmp"
rm -rf "$work"
mkdir -p "$work"/debs "$work"/qemu "$work"/dbs
cd "$work"

log "downloading QEMU, firmware and debootstrap packages"
(cd debs && apt-get download qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu debootstrap >&2) || {
  log "apt-get download failed: is this Debian 12 with a reachable mirror? (try apt-get update)"
  exit 1
}
# Never `apt-get install qemu-system-x86`: it Breaks the backported qemu-utils
# on these machines and apt would remove it. Only the libraries QEMU links to.
log "installing QEMU's missing shared libraries (--no-upgrade)"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends --no-upgrade \
  libcapstone4 libslirp0 libvdeplug2 libfdt1 libpmem1 librdmacm1 libibverbs1 liburing2 libbpf1 libaio1 libfuse3-3 \
  libpixman-1-0 libnuma1 libseccomp2 libjpeg62-turbo \
  libbrlapi0.8 libcacard0 libepoxy0 libsndio7.0 libspice-server1 libusb-1.0-0 libusbredirparser1 >&2
for f in debs/qemu-*.deb debs/seabios_*.deb debs/ipxe-qemu_*.deb; do dpkg -x "$f" qemu; done
dpkg -x debs/debootstrap_*.deb dbs
./qemu/usr/bin/qemu-system-x86_64 --version | head -1 >&2

log "debootstrap bookworm (a few minutes)"
mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
t0=$(date +%s)
DEBOOTSTRAP_DIR="$work/dbs/usr/share/debootstrap" "$work/dbs/usr/sbin/debootstrap" --variant=minbase \
  --include=linux-image-amd64,kmod,iproute2,rdma-core,ibverbs-providers,ibverbs-utils,rdmacm-utils,perftest,nvme-cli,fio,procps,iputils-ping,netcat-openbsd,util-linux \
  bookworm rootfs "$mirror" >debootstrap.log 2>&1 || { tail -30 debootstrap.log >&2; log "debootstrap failed"; exit 1; }
log "debootstrap took $(( $(date +%s) - t0 )) s"
rm -f rootfs/var/cache/apt/archives/*.deb

kver="$(basename "$(ls rootfs/boot/vmlinuz-* | sort -V | tail -1)")"; kver="${kver#vmlinuz-}"
install -m 0755 "$here/guest-init.sh" rootfs/init.sh
mkdir -p rootfs/etc/nvme
echo "nqn.2014-08.org.nvmexpress:uuid:$(cat /proc/sys/kernel/random/uuid)" > rootfs/etc/nvme/hostnqn
cat /proc/sys/kernel/random/uuid > rootfs/etc/nvme/hostid

# A small initrd (only what mounts the root disk) boots about twice as fast under TCG.
mkdir -p rootfs/etc/initramfs-tools-small
cp -r rootfs/etc/initramfs-tools/. rootfs/etc/initramfs-tools-small/
sed -i 's/^MODULES=.*/MODULES=list/' rootfs/etc/initramfs-tools-small/initramfs.conf
printf 'virtio_pci\nvirtio_blk\next4\n' > rootfs/etc/initramfs-tools-small/modules
chroot rootfs mkinitramfs -d /etc/initramfs-tools-small -o /boot/initrd-small.img "$kver" >&2
cp "rootfs/boot/vmlinuz-$kver" vmlinuz
cp rootfs/boot/initrd-small.img initrd.img
{
  echo "kernel=$kver"
  echo "nvme_cli=$(chroot rootfs dpkg-query -W -f='${Version}' nvme-cli)"
  echo "fio=$(chroot rootfs dpkg-query -W -f='${Version}' fio)"
  echo "qemu=$(dpkg-deb -f debs/qemu-system-x86_*.deb Version)"
} > versions.txt

truncate -s 2G rootfs.img
mkfs.ext4 -q -F -L vmroot -d rootfs rootfs.img
rm -rf rootfs debs dbs
echo "built in $(( $(date +%s) - t_start )) s" >> versions.txt
touch READY
rm -rf "$dest"
mv "$work" "$dest"
log "guest ready in $dest ($(tr '\n' ' ' < "$dest/versions.txt"))"
echo "$dest"
