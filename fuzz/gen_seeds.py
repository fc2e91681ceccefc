#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/corpus/<target>/ (valid encodings,
a few near misses). Re-run after changing a wire format; the files are committed."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SUBNQN = b"nqn.2021-06.io.spdk:ctc_rbd0"
HOSTNQN = b"nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001"


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def sqe(opc, flags=0x40, cid=1, nsid=0, dptr=bytes(16), cdw=(0,) * 6, mptr=0):
    return struct.pack("<BBHIIIQ", opc, flags, cid, nsid, 0, 0, mptr) + dptr + struct.pack("<6I", *cdw)


def sgl(addr, length, ident):
    return struct.pack("<QI3xB", addr, length, ident)


def keyed(addr, length, key, ident=0x40):
    return struct.pack("<Q", addr) + struct.pack("<I", length)[:3] + struct.pack("<IB", key, ident)


def cqe(dw0, sqhd, sqid, cid, status):
    return struct.pack("<IIHHHH", dw0, 0, sqhd, sqid, cid, status)


def pad(b, n, fill=b"\0"):
    return b + fill * (n - len(b))


# sqe_cqe
tdb4k = sgl(0, 4096, 0x5A)
put("sqe_cqe", "connect_admin", sqe(0x7F, nsid=0x01, dptr=sgl(0, 1024, 0x01), cdw=(0, 31, 120000, 0, 0, 0)))
put("sqe_cqe", "connect_io", sqe(0x7F, nsid=0x01, dptr=sgl(0, 1024, 0x01), cdw=(1 << 16, 127, 0, 0, 0, 0)))
put("sqe_cqe", "property_get_cap", sqe(0x7F, nsid=0x04, cdw=(1, 0x00, 0, 0, 0, 0)))
put("sqe_cqe", "property_set_cc", sqe(0x7F, nsid=0x00, cdw=(0, 0x14, 0x00460001, 0, 0, 0)))
put("sqe_cqe", "identify_ctrl", sqe(0x06, dptr=tdb4k, cdw=(1, 0, 0, 0, 0, 0)))
put("sqe_cqe", "get_log_ana", sqe(0x02, nsid=0xFFFFFFFF, dptr=tdb4k, cdw=(0x03FF800C, 0, 0, 0, 0, 0)))
put("sqe_cqe", "set_features_nq", sqe(0x09, cdw=(0x07, 0x00030003, 0, 0, 0, 0)))
put("sqe_cqe", "read_8_blocks", sqe(0x02, nsid=1, dptr=keyed(0x7F0000001000, 32768, 0x1234), cdw=(0x100, 0, 7, 0, 0, 0)))
put("sqe_cqe", "cqe_success", cqe(0x7FF8, 1, 0, 1, 0))
put("sqe_cqe", "cqe_ana_inaccessible", cqe(0, 5, 1, 9, (3 << 9 | 0x02) << 1))

# connect_data
def connect_data(hostid, cntlid, sub, host):
    return hostid + struct.pack("<H", cntlid) + bytes(238) + pad(sub, 256) + pad(host, 256) + bytes(256)


put("connect_data", "dynamic", connect_data(bytes(range(16)), 0xFFFF, SUBNQN, HOSTNQN))
put("connect_data", "io_queue", connect_data(b"\x11" * 16, 7, SUBNQN, HOSTNQN))
put("connect_data", "longest_nqn", connect_data(bytes(16), 1, b"nqn." + b"a" * 219, HOSTNQN))
put("connect_data", "nqn_without_nul", connect_data(bytes(16), 1, SUBNQN, b"h" * 256)[:1024])
put("connect_data", "discovery", connect_data(bytes(16), 0xFFFF, b"nqn.2014-08.org.nvmexpress.discovery", HOSTNQN))

# sgl
put("sgl", "in_capsule", sgl(0, 4096, 0x01))
put("sgl", "transport", sgl(0, 131072, 0x5A))
put("sgl", "address", sgl(0xDEADBEEF000, 512, 0x00))
put("sgl", "keyed", keyed(0x7F0000001000, 0xFFFFFF, 0xCAFEBABE))
put("sgl", "keyed_invalidate", keyed(0x1000, 4096, 7, 0x4F))
put("sgl", "last_segment", sgl(0, 32, 0x31))

# identify
ctrl = bytearray(4096)
struct.pack_into("<HH", ctrl, 0, 0x1B36, 0x1AF4)
ctrl[4:24] = pad(b"SPDK_BDEV_0", 20, b" ")
ctrl[24:64] = pad(b"corepath", 40, b" ")
ctrl[64:72] = pad(b"0.1", 8, b" ")
ctrl[76] = 0x0B
ctrl[77] = 5
struct.pack_into("<HI", ctrl, 78, 1, 0x00010300)
struct.pack_into("<I", ctrl, 92, 1 << 11)
ctrl[111] = 1
struct.pack_into("<H", ctrl, 320, 100)
ctrl[342] = 10
ctrl[343] = 0x5F
struct.pack_into("<II", ctrl, 344, 32, 32)
ctrl[512] = 0x66
ctrl[513] = 0x44
struct.pack_into("<HI", ctrl, 514, 128, 32)
struct.pack_into("<I", ctrl, 536, 0x00100005)
ctrl[768 : 768 + len(SUBNQN)] = SUBNQN
struct.pack_into("<IIHBB", ctrl, 1792, 260, 1, 0, 0, 1)
put("identify", "identify_ctrl", ctrl)

ns = bytearray(4096)
struct.pack_into("<QQQ", ns, 0, 2621440, 2621440, 2621440)
ns[25] = 1
ns[26] = 1
ns[30] = 1
struct.pack_into("<I", ns, 92, 1)
ns[104:120] = bytes(range(1, 17))
ns[120:128] = bytes(range(0x20, 0x28))
struct.pack_into("<HBB", ns, 128, 0, 9, 0)
struct.pack_into("<HBB", ns, 132, 0, 12, 0)
put("identify", "identify_ns", ns)

put("identify", "active_ns_list", pad(struct.pack("<4I", 1, 2, 3, 10), 4096))
put("identify", "ns_id_descs", pad(bytes([2, 16, 0, 0]) + bytes(range(16)) + bytes([3, 16, 0, 0]) + bytes(range(16, 32)) + bytes([4, 1, 0, 0, 0]), 4096))


def disc_entry(traddr):
    e = bytearray(1024)
    struct.pack_into("<BBBBHHHH", e, 0, 3, 1, 2, 2, 1, 0xFFFF, 128, 0)
    e[32:64] = pad(b"4420", 32, b" ")
    e[256:512] = pad(traddr, 256, b" ")
    e[768 : 768 + len(SUBNQN)] = SUBNQN
    return bytes(e)


put("identify", "discovery_log", pad(struct.pack("<QQH", 3, 2, 0), 1024) + disc_entry(b"10.0.0.1") + disc_entry(b"10.0.0.2"))
ana = struct.pack("<QH6x", 9, 2)
ana += struct.pack("<IIQB15x", 1, 2, 4, 1) + struct.pack("<2I", 1, 2)
ana += struct.pack("<IIQB15x", 2, 0, 5, 3)
put("identify", "ana_log", ana)
smart = bytearray(512)
smart[1:3] = struct.pack("<H", 310)
smart[3] = 100
struct.pack_into("<Q", smart, 128, 1234)
put("identify", "smart_log", smart)
put("identify", "error_log_entry", struct.pack("<QHHHHQIBB2xQH22x", 1, 1, 9, 0x0004, 0, 0x100, 1, 0, 3, 0, 0))
