#!/usr/bin/env python3
"""Rename one layer of a Photoshop file (PSD or PSB), in place.

    psd_rename_layer.py FILE LAYER NEW_NAME

LAYER is the layer's current name, or its index (0 = bottom layer) when no
layer has that name. Rewrites what Photoshop changes on a rename and nothing
else: the layer record's Pascal name (padded to a multiple of 4 bytes) and
its 'luni' Unicode name block when it has one, fixing the lengths that
enclose them (the record's extra data, the layer info, the layer and mask
section; for 16- and 32-bit documents the 'Lr16'/'Lr32' block instead of
the layer info). All other bytes, the channel and merged image data among
them, are copied unchanged (they move when the name's length changes). The
file is replaced atomically; the new one is parsed again as a check.
Standard library only.
"""
import os
import shutil
import struct
import sys
import tempfile

# Additional layer information keys with 8-byte lengths in a PSB.
LONG_KEYS = {b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk", b"lnk2", b"FEid",
             b"FXid", b"PxSD"}


class Bad(Exception):
    pass


class Reader:
    def __init__(self, f, size):
        self.f, self.size = f, size

    def read(self, at, n):
        if at < 0 or n < 0 or at + n > self.size:
            raise Bad(f"a read of {n} bytes at {at} is past the end of the file ({self.size} bytes)")
        self.f.seek(at)
        b = self.f.read(n)
        if len(b) != n:
            raise Bad("short read")
        return b

    def uint(self, at, n):
        return int.from_bytes(self.read(at, n), "big")


def layer_records(r, at, end, psb):
    """The layer records of a layer info structure (layer count first) in
    [at, end): a list of dicts with the record's bounds and its parts."""
    count = abs(struct.unpack(">h", r.read(at, 2))[0])
    channel = 10 if psb else 6
    pos = at + 2
    records = []
    for _ in range(count):
        start = pos
        channels = r.uint(pos + 16, 2)
        pos += 18 + channels * channel
        if r.read(pos, 4) != b"8BIM":
            raise Bad(f"no blend mode signature at {pos}")
        extra_len_at = pos + 12
        extra = extra_len_at + 4
        extra_end = extra + r.uint(extra_len_at, 4)
        if extra_end > end:
            raise Bad("a layer record runs past its section")
        mask_end = extra + 4 + r.uint(extra, 4)
        ranges_end = mask_end + 4 + r.uint(mask_end, 4)
        name_len = r.uint(ranges_end, 1)
        name_end = ranges_end + (1 + name_len + 3) // 4 * 4
        name = r.read(ranges_end + 1, name_len)
        blocks = []  # (key, header bytes without length, length width, data)
        b = name_end
        while b + 12 <= extra_end:
            sig, key = r.read(b, 4), r.read(b + 4, 4)
            if sig not in (b"8BIM", b"8B64"):
                raise Bad(f"no block signature at {b}")
            width = 8 if psb and key in LONG_KEYS else 4
            n = r.uint(b + 8, width)
            data_at = b + 8 + width
            if data_at + n > extra_end:
                raise Bad(f"block {key!r} runs past its record")
            blocks.append((sig + key, width, data_at, n))
            b = data_at + n
        if b != extra_end:
            # Bytes after the last block (padding): kept as they are.
            blocks.append((None, 0, b, extra_end - b))
        unicode = None
        for head, width, data_at, n in blocks:
            if head and head[4:] == b"luni" and n >= 4:
                chars = r.uint(data_at, 4)
                unicode = r.read(data_at + 4, min(2 * chars, n - 4)).decode("utf-16-be", "replace")
        records.append(dict(start=start, extra_len_at=extra_len_at, extra=extra, ranges_end=ranges_end,
                            name_end=name_end, end=extra_end, name=name, unicode=unicode, blocks=blocks))
        pos = extra_end
    return records


def pascal(name):
    raw = name.encode("mac_roman", "replace")[:255]
    b = bytes([len(raw)]) + raw
    return b + b"\0" * (-len(b) % 4)


def luni(name, old_len):
    units = name.encode("utf-16-be")
    data = struct.pack(">I", len(units) // 2) + units
    # Keep the padding convention of the file (Photoshop pads to 4).
    align = 4 if old_len % 4 == 0 else 2
    return data + b"\0" * (-len(data) % align)


def layer_infos(r, psb):
    """Yields (records, [(offset, width) of each enclosing length field])."""
    word = 8 if psb else 4
    if r.read(0, 4) != b"8BPS":
        raise Bad("not a Photoshop file")
    resources = 30 + r.uint(26, 4)
    lm = resources + 4 + r.uint(resources, 4)
    lm_end = lm + word + r.uint(lm, word)
    if lm_end > r.size:
        raise Bad("the layer and mask section runs past the end of the file")
    info = lm + word
    info_len = r.uint(info, word)
    if info_len:
        yield layer_records(r, info + word, info + word + info_len, psb), [(lm, word), (info, word)]
    pos = info + word + info_len
    if pos + 4 > lm_end:
        return
    pos += 4 + r.uint(pos, 4)  # global layer mask info
    while pos + 12 <= lm_end:
        sig, key = r.read(pos, 4), r.read(pos + 4, 4)
        if sig not in (b"8BIM", b"8B64"):
            return
        width = 8 if psb and key in LONG_KEYS else 4
        n = r.uint(pos + 8, width)
        data = pos + 8 + width
        if key in (b"Lr16", b"Lr32", b"Layr"):
            yield layer_records(r, data, data + n, psb), [(lm, word), (pos + 8, width)]
        pos = data + n


def rename(path, which, new_name):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        r = Reader(f, size)
        version = r.uint(4, 2)
        if version not in (1, 2):
            raise Bad(f"unknown version {version}")
        psb = version == 2
        found = None
        all_names = []
        for records, lengths in layer_infos(r, psb):
            for i, rec in enumerate(records):
                names = {rec["name"].decode("mac_roman"), rec["unicode"]}
                all_names.append(rec["unicode"] or rec["name"].decode("mac_roman"))
                if found is None and which in names:
                    found = (rec, lengths)
            if found is None and which.isdigit() and int(which) < len(records):
                found = (records[int(which)], lengths)
        if found is None:
            raise Bad(f"no layer {which!r}; layers: {all_names}")
        rec, lengths = found
        # The new record: everything up to the name as it was, the new
        # Pascal name, the blocks (luni with the new name).
        new_tail = bytearray(pascal(new_name))
        for head, width, data_at, n in rec["blocks"]:
            if head is None:
                new_tail += r.read(data_at, n)
                continue
            data = luni(new_name, n) if head[4:] == b"luni" else r.read(data_at, n)
            new_tail += head + len(data).to_bytes(width, "big") + data
        old_tail_len = rec["end"] - rec["ranges_end"]
        delta = len(new_tail) - old_tail_len
        if delta % 2:
            raise Bad("internal: odd length change")
        # Replacements, in file order: (offset, old length, new bytes).
        edits = [(at, w, (r.uint(at, w) + delta).to_bytes(w, "big")) for at, w in lengths]
        edits.append((rec["extra_len_at"], 4, (rec["end"] - rec["extra"] + delta).to_bytes(4, "big")))
        edits.append((rec["ranges_end"], old_tail_len, bytes(new_tail)))
        edits.sort()
        fd, tmp = tempfile.mkstemp(prefix=".psd_rename.", dir=os.path.dirname(os.path.abspath(path)))
        try:
            with os.fdopen(fd, "wb") as out:
                pos = 0
                for at, n, data in edits:
                    f.seek(pos)
                    copy(f, out, at - pos)
                    out.write(data)
                    pos = at + n
                f.seek(pos)
                shutil.copyfileobj(f, out, 1 << 20)
            shutil.copymode(path, tmp)
            check(tmp, new_name, psb)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    return rec["unicode"] or rec["name"].decode("mac_roman"), delta


def copy(src, dst, n):
    while n > 0:
        b = src.read(min(n, 1 << 20))
        if not b:
            raise Bad("short read")
        dst.write(b)
        n -= len(b)


def check(path, new_name, psb):
    """The rewritten file parses, and has a layer of the new name."""
    with open(path, "rb") as f:
        r = Reader(f, os.path.getsize(path))
        want = pascal(new_name)[1:1 + pascal(new_name)[0]]
        for records, _ in layer_infos(r, psb):
            if any(rec["name"] == want for rec in records):
                return
    raise Bad("internal: the renamed layer is not in the rewritten file")


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: psd_rename_layer.py FILE LAYER NEW_NAME")
    path, which, new_name = sys.argv[1:]
    try:
        old, delta = rename(path, which, new_name)
    except (Bad, OSError, struct.error) as e:
        sys.exit(f"psd_rename_layer: {path}: {e}")
    print(f"{path}: layer {old!r} renamed to {new_name!r} ({delta:+d} bytes)")


if __name__ == "__main__":
    main()
