#!/usr/bin/env bash
# Installs what corepath's build and tests need on a Debian 12 machine and is
# missing. Safe to run again: it only installs what is absent.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

# tshark: the NVMe/TCP dissector checks our PDUs in the capture test.
have tshark || need_apt+=(tshark)
# pkg-config and a C toolchain for -sys crates.
have pkg-config || need_apt+=(pkg-config)
have cc || need_apt+=(build-essential)
# nft blackholes a gateway's address inside a test's own network namespace (multipath fault tests);
# ip (iproute2) makes that namespace.
have nft || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
have ip || [ -x /usr/sbin/ip ] || need_apt+=(iproute2)
# mkfs.ext4 -d makes the vmlab guest image (tests/vmlab/build.sh).
have mkfs.ext4 || [ -x /sbin/mkfs.ext4 ] || need_apt+=(e2fsprogs)

if ((${#need_apt[@]})); then
  echo "install-deps: installing ${need_apt[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; the default (no) is fine.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! have cargo; then
  echo "install-deps: cargo is missing; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
echo "install-deps: ok" >&2
