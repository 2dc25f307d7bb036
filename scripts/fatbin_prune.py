#!/usr/bin/env python3
"""Shrinks a CUDA library for one GPU architecture by blanking the GPU code it does not need.

A CUDA shared library keeps its kernels in the ELF section `.nv_fatbin`: a run of fat-binary
containers (magic 0xBA55ED50), one per compiled source file, each holding one entry per
architecture (a 64-byte or longer header, then the entry's payload, zstd-compressed machine code
or PTX). This tool overwrites with zeros the payload of every entry whose architecture is not
`--arch`, and, with `--drop`, of the entries whose kernel names match a pattern (whole source
files: flash attention, CUTLASS, mixture-of-experts…). Nothing moves: headers, offsets and
sizes stay as they are, so the library loads as before, and the zeros compress to almost
nothing. The CUDA runtime loads a module only when one of its kernels is first launched
(CUDA_MODULE_LOADING=LAZY, the default since CUDA 12.2), so a blanked entry matters only if the
code it held is used on that GPU.

It makes ONNX Runtime's CUDA provider (284 MB, kernels for six architectures) small enough to
copy to a GPU machine cheaply; `scripts/gpu_check.sh prepare` uses it.

Usage: fatbin_prune.py IN OUT --arch 90 [--drop REGEX]

Kernel names are read from each kept entry's machine code, which is decompressed with the
`zstd` command. Prints what it kept and blanked, by architecture and by pattern.
"""
import argparse
import re
import struct
import subprocess
import sys

FATBIN_MAGIC = 0xBA55ED50


def section(data, wanted):
    """(offset, size) of the ELF64 section named `wanted`."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    for name, _type, _flags, _addr, offset, size in headers:
        end = data.index(b"\0", names_at + name)
        if data[names_at + name:end].decode() == wanted:
            return offset, size
    sys.exit(f"no {wanted} section")


def entries(data, start, size):
    """Yields (entry offset, header size, payload size, stored size, kind, arch) of every entry."""
    pos, end = start, start + size
    while pos + 16 <= end:
        magic, _version, header_size, body = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # containers start 8-byte aligned; padding lies between them
            continue
        entry, stop = pos + header_size, pos + header_size + body
        while entry + 64 <= stop:
            kind, _, entry_header, padded = struct.unpack_from("<HHIQ", data, entry)
            stored, = struct.unpack_from("<I", data, entry + 16)
            arch, = struct.unpack_from("<I", data, entry + 28)
            if entry_header < 64:
                break
            yield entry, entry_header, padded, stored, kind, arch
            entry += entry_header + padded
        pos = stop


def kernel_names(payload):
    """The `.text.<kernel>` section names of a compressed cubin, or of a plain one."""
    if payload[:4] == b"\x28\xb5\x2f\xfd":
        payload = subprocess.run(["zstd", "-dcq"], input=payload, capture_output=True, check=True).stdout
    return {m.decode() for m in re.findall(rb"\.text\.([A-Za-z0-9_$.]+)", payload)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--arch", type=int, required=True, help="the SM version to keep (90 for H100/H200)")
    ap.add_argument("--drop", help="blank kept entries whose kernel names match this regular expression")
    args = ap.parse_args()
    drop = re.compile(args.drop) if args.drop else None

    data = bytearray(open(args.input, "rb").read())
    start, size = section(data, ".nv_fatbin")
    kept = blanked_arch = blanked_drop = 0
    counts = {"kept": 0, "other arch": 0, "dropped": 0}
    for entry, header, padded, stored, kind, arch in list(entries(data, start, size)):
        payload = slice(entry + header, entry + header + padded)
        if arch != args.arch:
            blanked_arch += padded
            counts["other arch"] += 1
        elif drop and kind == 2 and any(drop.search(n) for n in kernel_names(bytes(data[entry + header:entry + header + stored]))):
            blanked_drop += padded
            counts["dropped"] += 1
        else:
            kept += padded
            counts["kept"] += 1
            continue
        data[payload] = bytes(padded)
    with open(args.output, "wb") as f:
        f.write(data)
    mib = 1 << 20
    print(f"{args.input}: .nv_fatbin {size / mib:.1f} MiB; kept {counts['kept']} entries ({kept / mib:.1f} MiB) "
          f"for sm_{args.arch}; blanked {counts['other arch']} of other architectures ({blanked_arch / mib:.1f} MiB) "
          f"and {counts['dropped']} matching the pattern ({blanked_drop / mib:.1f} MiB)")


if __name__ == "__main__":
    main()
