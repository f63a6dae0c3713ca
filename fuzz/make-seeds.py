#!/usr/bin/env python3
"""Writes the hand-made seed corpora into fuzz/corpus/<target>/ (run from anywhere; idempotent).
Each seed is a small valid input or a named edge case; the layouts are described in the target
sources (fuzz/Vhost.Fuzz.Targets/*.cs)."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def msg(code, body=b"", flags=1, size=None):
    return struct.pack("<III", code, flags, len(body) if size is None else size) + body


u64 = lambda v: struct.pack("<Q", v)
state = lambda i, n: struct.pack("<II", i, n)

# --- message: mode byte (bits 0-1 eventfds, 2-3 memfds, 7 negotiate) + raw stream -------------
put("message", "get-features", [0] + list(msg(1)))
put("message", "negotiated-get-protocol-features", [0x80] + list(msg(15)))
region = struct.pack("<QQQQ", 0, 4096, 0x7F0000000000, 0)
put("message", "set-mem-table-1-region", [0x04] + list(msg(5, struct.pack("<II", 1, 0) + region, flags=9)))
put("message", "ring-setup", [0x81] + list(
    msg(12, u64(0)) + msg(8, state(0, 256)) + msg(10, state(0, 0))
    + msg(9, struct.pack("<IIQQQQ", 0, 0, 0x1000, 0x2000, 0x3000, 0)) + msg(11, state(0, 0))))
put("message", "get-inflight-fd", [0x80] + list(msg(31, struct.pack("<QQHH", 0, 0, 1, 128) + b"\0" * 4, flags=9)))
put("message", "get-config", [0x80] + list(msg(24, struct.pack("<III", 0, 8, 0) + b"\0" * 8)))
put("message", "add-mem-reg", [0x84] + list(msg(37, u64(0) + region, flags=9)))
put("message", "status", [0x80] + list(msg(39, u64(0xF)) + msg(40)))
put("message", "edge-truncated-header", [0] + list(msg(1)[:5]))
put("message", "edge-size-too-large", [0] + list(msg(1, size=0xFFFFFFFF)))
put("message", "edge-reply-flag", [0] + list(msg(1, flags=5)))
put("message", "edge-unknown-code", [0] + list(msg(999, flags=9)))
put("message", "edge-vring-index-255", [0x01] + list(msg(12, u64(255)) + msg(8, state(0xFFFFFFFF, 0))))
put("message", "edge-stray-fds", [0x0f] + list(msg(1)))
put("message", "edge-many-requests", [0] + list(msg(1) * 200))

# --- split-chain: [size sel][flags][vring base u32] + RAM from GPA 0 ---------------------------
def split(size_sel, flags, base, descs, avail_idx, ring, extra=()):
    size = 1 << (size_sel % 9)
    ram = bytearray(max(size * 16 + 6 + 2 * size, 0x300))
    for i, (addr, length, fl, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", ram, i * 16, addr, length, fl, nxt)
    struct.pack_into("<HH", ram, size * 16, 0, avail_idx)
    for i, h in enumerate(ring):
        struct.pack_into("<H", ram, size * 16 + 4 + 2 * i, h)
    for off, blob in extra:
        ram[off:off + len(blob)] = blob
    return bytes([size_sel, flags]) + struct.pack("<I", base) + bytes(ram)

NEXT, WRITE, INDIRECT = 1, 2, 4
put("split-chain", "two-descriptors", split(3, 0, 0, [(0x1000, 16, NEXT, 1), (0x2000, 512, WRITE, 0)], 1, [0]))
put("split-chain", "three-chains", split(3, 1, 0, [(0x1000, 16, 0, 0), (0x1100, 16, NEXT, 2), (0x2000, 64, WRITE, 0)], 2, [0, 1]))
itable = struct.pack("<QIHH", 0x1000, 16, NEXT, 1) + struct.pack("<QIHH", 0x2000, 1, WRITE, 0)
put("split-chain", "indirect", split(3, 2, 0, [(0x200, 32, INDIRECT, 0)], 1, [0], extra=[(0x200, itable)]))
put("split-chain", "edge-self-loop", split(3, 0, 0, [(0x1000, 16, NEXT, 0)], 1, [0]))
put("split-chain", "edge-next-out-of-range", split(3, 0, 0, [(0x1000, 16, NEXT, 200)], 1, [0]))
put("split-chain", "edge-buffer-straddles-region", split(3, 0, 0, [(0xFFF0, 0x100, 0, 0)], 1, [0]))
put("split-chain", "edge-buffer-in-hole", split(3, 0, 0, [(0x18000, 16, 0, 0)], 1, [0]))
put("split-chain", "edge-buffer-in-region-b", split(3, 0, 0, [(0x20010, 0x100, WRITE, 0)], 1, [0]))
put("split-chain", "edge-address-wraps", split(3, 0, 0, [(0xFFFFFFFFFFFFFFF0, 0x100, 0, 0)], 1, [0]))
put("split-chain", "edge-avail-idx-jump", split(3, 0, 0, [(0x1000, 16, 0, 0)], 100, [0]))
put("split-chain", "edge-head-out-of-range", split(3, 0, 0, [(0x1000, 16, 0, 0)], 1, [9]))
put("split-chain", "edge-indirect-nested", split(3, 2, 0, [(0x200, 16, INDIRECT, 0)], 1, [0],
                                                 extra=[(0x200, struct.pack("<QIHH", 0x200, 16, INDIRECT, 0))]))
put("split-chain", "edge-indirect-with-next", split(3, 2, 0, [(0x200, 32, INDIRECT | NEXT, 1), (0x1000, 8, 0, 0)], 1, [0], extra=[(0x200, itable)]))

# --- packed-chain: [size-1][flags][vring base u32] + RAM from GPA 0 ----------------------------
AVAIL, USED = 1 << 7, 1 << 15
def packed(size, flags, base, descs, extra=()):
    ram = bytearray(max(size * 16 + 8, 0x300))
    for i, (addr, length, ident, fl) in enumerate(descs):
        struct.pack_into("<QIHH", ram, i * 16, addr, length, ident, fl)
    for off, blob in extra:
        ram[off:off + len(blob)] = blob
    return bytes([size - 1, flags]) + struct.pack("<I", base) + bytes(ram)

WRAPS = 0x80008000
put("packed-chain", "two-descriptors", packed(8, 0, WRAPS, [(0x1000, 16, 0, AVAIL | NEXT), (0x2000, 512, 0, AVAIL | WRITE)]))
put("packed-chain", "two-chains", packed(8, 1, WRAPS, [(0x1000, 16, 0, AVAIL), (0x2000, 64, 1, AVAIL | WRITE)]))
ptable = struct.pack("<QIHH", 0x1000, 16, 0, 0) + struct.pack("<QIHH", 0x2000, 8, 0, WRITE)
put("packed-chain", "indirect", packed(8, 2, WRAPS, [(0x200, 32, 0, AVAIL | INDIRECT)], extra=[(0x200, ptable)]))
# Base avail index 3 of 4: the chain wraps from the last slot to slot 0.
put("packed-chain", "wrap-around", packed(4, 0, WRAPS | 3, [(0x1000, 8, 0, USED), (0, 0, 0, 0), (0, 0, 0, 0), (0x1000, 16, 3, AVAIL | NEXT)]))
put("packed-chain", "edge-chain-longer-than-queue", packed(2, 0, WRAPS, [(0x1000, 16, 0, AVAIL | NEXT), (0x1000, 16, 0, AVAIL | NEXT)]))
put("packed-chain", "edge-buffer-straddles-region", packed(8, 0, WRAPS, [(0xFFF0, 0x100, 0, AVAIL)]))
put("packed-chain", "edge-address-wraps", packed(8, 0, WRAPS, [(0xFFFFFFFFFFFFFFF0, 0x100, 0, AVAIL | WRITE)]))
put("packed-chain", "edge-id-out-of-range", packed(8, 0, WRAPS, [(0x1000, 16, 300, AVAIL)]))
put("packed-chain", "edge-indirect-empty", packed(8, 2, WRAPS, [(0x200, 0, 0, AVAIL | INDIRECT)]))
put("packed-chain", "edge-indirect-misaligned", packed(8, 2, WRAPS, [(0x201, 24, 0, AVAIL | INDIRECT)]))

# --- inflight: [queues-1][region qsize-1 u16][ring size sel][used u16][shape][0] + region + RAM -
def inflight(queues, qsize, ring_sel, used, shape, heads=(), version=1, count=None, last=0, hused=None, ram=b""):
    stride = ((16 + 16 * qsize - 14) + 63) & ~63
    region = bytearray(stride * queues)
    for q in range(queues):
        struct.pack_into("<QHHHH", region, q * stride, 0, version, qsize if count is None else count, last, used if hused is None else hused)
        for h, counter in heads:
            struct.pack_into("<B5xHQ", region, q * stride + 16 + 16 * h, 1, 0, counter)
    hdr = bytes([queues - 1]) + struct.pack("<H", qsize - 1) + bytes([ring_sel]) + struct.pack("<H", used) + bytes([shape, 0])
    return hdr + bytes(region) + ram

ring = split(3, 0, 0, [(0x1000, 16, 0, 0), (0x1100, 16, 0, 0), (0x2000, 64, WRITE, 0)], 3, [0, 1, 2])[6:]
put("inflight", "clean", inflight(1, 8, 3, 0, 0, ram=ring))
put("inflight", "two-inflight", inflight(1, 8, 3, 0, 0, heads=[(0, 5), (1, 3)], ram=ring))
put("inflight", "half-finished-batch", inflight(2, 8, 3, 1, 0, heads=[(2, 1)], last=2, hused=0, ram=ring))
put("inflight", "edge-bad-version", inflight(1, 8, 3, 0, 0, version=7))
put("inflight", "edge-ring-larger-than-region", inflight(1, 8, 6, 0, 0))
put("inflight", "edge-last-batch-out-of-range", inflight(1, 8, 3, 1, 0, last=500, hused=0))
put("inflight", "edge-size-one-short", inflight(1, 8, 3, 0, 1))
put("inflight", "edge-size-beyond-file", inflight(1, 8, 3, 0, 2))
put("inflight", "edge-offset", inflight(1, 8, 3, 0, 3))
put("inflight", "edge-inflight-byte-2", inflight(1, 8, 3, 0, 0)[:8 + 16] + b"\x02")

# --- packed-inflight: [queues-1][region qsize-1 u16][ring size-1 u16][vring base u32][shape][0 0]
#     + region (packed layout: 32-byte header, 32-byte entries) + RAM (descriptor ring at 0) ------
def pinflight(queues, qsize, ring_size, base, shape, version=1, free=None, used=(0, 0), wraps=(1, 1), chains=(), count=None, ram=b"", patch=()):
    stride = ((32 + 32 * qsize - 3) + 63) & ~63
    region = bytearray(stride * queues)
    for q in range(queues):
        o = q * stride
        taken = sum(len(c[2]) for c in chains)
        head = taken if free is None else free
        struct.pack_into("<QHHHHHHBB", region, o, 0, version, qsize if count is None else count, head, head, used[0], used[1], wraps[0], wraps[1])
        for e in range(qsize):
            struct.pack_into("<H", region, o + 32 + 32 * e + 2, e + 1)
        e = 0
        for counter, ident, descs in chains:
            h = e
            for k, (addr, length, fl) in enumerate(descs):
                last = k == len(descs) - 1
                struct.pack_into("<BxHHHQHHIQ", region, o + 32 + 32 * e, 1 if k == 0 else 0, e + 1, h + len(descs) - 1 if k == 0 else 0,
                                 len(descs) if k == 0 else 0, counter if k == 0 else 0, ident if last else 0, fl | (0 if last else NEXT), length, addr)
                e += 1
        for off, blob in patch:
            region[o + off:o + off + len(blob)] = blob
    hdr = bytes([queues - 1]) + struct.pack("<HHI", qsize - 1, ring_size - 1, base) + bytes([shape, 0, 0])
    return hdr + bytes(region) + ram

pring = bytearray(0x300)
for i, (addr, length, ident, fl) in enumerate([(0x1000, 16, 0, AVAIL | NEXT), (0x2000, 64, 0, AVAIL | WRITE), (0x1100, 16, 1, AVAIL), (0x1200, 16, 2, AVAIL | NEXT), (0x2100, 32, 2, AVAIL | WRITE)]):
    struct.pack_into("<QIHH", pring, i * 16, addr, length, ident, fl)
pring = bytes(pring)
two = [(4, 0, [(0x1000, 16, 0), (0x2000, 64, WRITE)]), (2, 1, [(0x1100, 16, 0)])]
put("packed-inflight", "fresh", pinflight(1, 8, 8, WRAPS, 0, version=0, ram=pring))
put("packed-inflight", "two-in-flight", pinflight(2, 8, 8, WRAPS, 0, chains=two, ram=pring))
put("packed-inflight", "completion-rolled-back", pinflight(1, 8, 8, WRAPS, 0, chains=two, used=(2, 0), ram=pring))
used_ring = bytearray(pring); struct.pack_into("<QIHH", used_ring, 0, 0, 64, 0, AVAIL | USED)
put("packed-inflight", "completion-rolled-forward", pinflight(1, 8, 8, WRAPS, 0, chains=two, used=(2, 0), ram=bytes(used_ring)))
put("packed-inflight", "edge-bad-version", pinflight(1, 8, 8, WRAPS, 0, version=9, chains=two, ram=pring))
put("packed-inflight", "edge-free-list-loop", pinflight(1, 8, 8, WRAPS, 0, chains=two, ram=pring, patch=[(32 + 32 * 7 + 2, struct.pack("<H", 3))]))
put("packed-inflight", "edge-id-out-of-range", pinflight(1, 8, 8, WRAPS, 0, chains=two, ram=pring, patch=[(32 + 32 * 1 + 16, struct.pack("<H", 200))]))
put("packed-inflight", "edge-chain-loop", pinflight(1, 8, 8, WRAPS, 0, chains=two, ram=pring, patch=[(32 + 2, struct.pack("<H", 0)), (32 + 4, struct.pack("<H", 0))]))
put("packed-inflight", "edge-ring-larger-than-region", pinflight(1, 8, 64, WRAPS, 0, chains=two, ram=pring))
put("packed-inflight", "edge-size-one-short", pinflight(1, 8, 8, WRAPS, 1, chains=two, ram=pring))

# --- config: records [op][offset u32][size u32][flags u32][n][payload] ---------------------------
def rec(op, offset, size, payload, flags=0):
    return bytes([op]) + struct.pack("<III", offset, size, flags) + bytes([len(payload)]) + bytes(payload)

put("config", "get-all", rec(2, 0, 60, [0] * 60))
put("config", "set-writeback", rec(3, 32, 1, [0]) + rec(2, 32, 1, [0]))
put("config", "get-then-set", rec(0, 0, 8, [0] * 8) + rec(1, 32, 1, [1]))
put("config", "edge-offset-beyond-space", rec(2, 0xF00, 255, [0] * 255))
put("config", "edge-size-mismatch", rec(2, 0, 200, [0] * 4))
put("config", "edge-header-short", rec(6, 0, 4, [0] * 4))
put("config", "edge-header-long", rec(10, 0, 4, [0] * 4) + rec(2, 0, 4, [0] * 4))
put("config", "edge-set-read-only", rec(3, 0, 8, [0xFF] * 8))
put("config", "edge-offset-wraps", rec(2, 0xFFFFFFFF, 2, [0, 0]))

# --- net-state: a net sample port state (samples/VhostUserNet/NetPortState.cs) ---------------------


def port_state(counters, macs, version=1, count=None):
    b = b"VUNP" + struct.pack("<HH", version, 0) + b"".join(struct.pack("<q", c) for c in counters)
    b += struct.pack("<I", len(macs) if count is None else count)
    return b + b"".join(bytes(m) for m in macs)


put("net-state", "two-macs", port_state([2, 128, 0, 0, 0, 0, 1], [[2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 0x20]]))
put("net-state", "empty-table", port_state([0] * 7, []))
put("net-state", "edge-version-2", port_state([0] * 7, [], version=2))
put("net-state", "edge-count-lies", port_state([0] * 7, [[2, 0, 0, 0, 0, 1]], count=1000))
put("net-state", "edge-group-mac", port_state([0] * 7, [[1, 0, 0x5e, 0, 0, 1]]))
put("net-state", "edge-duplicate-macs", port_state([0] * 7, [[2, 0, 0, 0, 0, 1]] * 3))

# --- postcopy: one operation per byte against a daemon with postcopy on (fuzz/Vhost.Fuzz.Targets/PostcopyTarget.cs)
# bits 0-2: 0 ADVISE, 1 LISTEN, 2 END, 3 SET_MEM_TABLE, 4 ack u64 0, 5 ack u64 1, 6 ADD_MEM_REG, 7 GET_FEATURES;
# bit 3 NEED_REPLY; bits 4-7 the region's guest address in MiB.
ADVISE, LISTEN, END, TABLE, ACK, NACK, ADD, GETF = 8, 9, 10, 11, 12, 13, 14, 15
put("postcopy", "qemu-order", [ADVISE, LISTEN, TABLE, ACK, END])
put("postcopy", "end-before-advise", [END, ADVISE])
put("postcopy", "listen-before-advise", [LISTEN, TABLE, ADVISE, END])
put("postcopy", "advise-twice-end-twice", [ADVISE, ADVISE, END, END])
put("postcopy", "listen-twice", [ADVISE, LISTEN, LISTEN, END])
put("postcopy", "table-before-listen", [ADVISE, TABLE, LISTEN, END])
put("postcopy", "never-acked", [ADVISE, LISTEN, TABLE])
put("postcopy", "rejected", [ADVISE, LISTEN, TABLE, NACK, GETF])
put("postcopy", "add-mem-reg-listening", [ADVISE, LISTEN, ADD, ACK, END])
put("postcopy", "tables-replaced", [ADVISE, LISTEN, TABLE, ACK, TABLE | 0x10, ACK, TABLE | 0x20, ACK, END, GETF])
# --- shmem-map: region count-1, region sizes in pages, then 26-byte records -----------------------
# (op: bit 0 unmap, bit 1 writable; shmid; shm offset, fd offset, length as u64) on a 16-page memfd.
P = 4096
rec = lambda op, sid, off, fdo, ln: bytes([op, sid]) + struct.pack("<QQQ", off, fdo, ln)
put("shmem-map", "map-unmap", bytes([1, 8, 2]) + rec(2, 0, P, 2 * P, 2 * P) + rec(1, 0, P, 0, 2 * P))
put("shmem-map", "two-regions-full", bytes([1, 4, 4]) + rec(0, 0, 0, 0, 4 * P) + rec(2, 1, 0, 4 * P, 4 * P))
put("shmem-map", "edge-beyond-region", bytes([0, 8]) + rec(0, 0, 7 * P, 0, 2 * P) + rec(0, 0, 8 * P, 0, P))
put("shmem-map", "edge-overflow", bytes([0, 8]) + rec(0, 0, 2**64 - P, 0, 2 * P) + rec(0, 0, 0, 2**64 - P, 2 * P))
put("shmem-map", "edge-overlap-and-partial-unmap", bytes([0, 8]) + rec(0, 0, 0, 0, 4 * P) + rec(0, 0, 3 * P, 0, P) + rec(1, 0, P, 0, P))
put("shmem-map", "edge-misaligned-unconfigured-past-file", bytes([1, 8, 0]) + rec(0, 0, 1, 0, P) + rec(0, 1, 0, 0, P) + rec(0, 0, 0, 15 * P, 2 * P) + rec(0, 9, 0, 0, P))
# --- iotlb: records of op(1) iova(8) size(8) user(8) perm(1) (fuzz/Vhost.Fuzz.Targets/IotlbTarget.cs) ---
rec = lambda op, iova, size, user, perm: struct.pack("<BQQQB", op, iova, size, user, perm)
put("iotlb", "update-translate", rec(0x80, 0x1000, 0xfff, 0x2000, 3) + rec(0x82, 0x1800, 0x100, 0, 0) + rec(0x83, 0x1ff0, 0x20, 0, 0))
put("iotlb", "overlap-invalidate", rec(0x80, 0, 0x3fff, 0, 3) + rec(0x80, 0x1000, 0xfff, 0x8000, 1) + rec(0x81, 0x800, 0x1fff, 0, 0) + rec(0x83, 0x2800, 0x10, 0, 0))
put("iotlb", "hole-between-regions", rec(0x80, 0, 0x2ffff, 0, 3) + rec(0x82, 0xfff0, 0x40, 0, 0) + rec(0x84, 0, 0x100, 0, 1))
put("iotlb", "edge-wrap", rec(0, 0xFFFFFFFFFFFFF000, 0x2000, 0, 3) + rec(1, 0xFFFFFFFFFFFFFFFF, 2, 0, 0))
put("iotlb", "edge-all-space", rec(0, 0, 0xFFFFFFFFFFFFFFFF, 0, 3) + rec(2, 0x1234, 0x10, 0, 0) + rec(1, 0, 0xFFFFFFFFFFFFFFFF, 0, 0))
put("iotlb", "edge-read-only-write", rec(0x80, 0x4000, 0xfff, 0x4000, 1) + rec(0x83, 0x4000, 0x10, 0, 0))
