#!/usr/bin/env python3
"""Draw demo/site/img/logo.png: a zipper on a rounded tile, pixel by pixel.

No PIL: each pixel is the average of 4x4 samples (anti-aliasing) of a few
shapes, and the PNG is written by hand with zlib and struct. The output is
deterministic, so rerunning it gives the same file.

    python3 demo/make-logo.py
"""
import os
import struct
import zlib

SIZE = 128
SS = 4  # samples per pixel along each axis

TILE = (22, 78, 99)       # deep teal
TAPE = (15, 55, 71)       # the zipper's tape, darker
TOOTH = (242, 169, 59)    # amber teeth
METAL = (236, 240, 241)   # slider and pull tab


def in_round_rect(x, y, x0, y0, x1, y1, r):
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def sample(x, y):
    """Colour (r, g, b, a) of the logo at a point; later shapes paint over earlier ones."""
    if not in_round_rect(x, y, 4, 4, 124, 124, 24):
        return (0, 0, 0, 0)
    colour = TILE
    if 48 <= x <= 80 and 4 <= y <= 124:
        colour = TAPE
    # Interlocking teeth: left and right rows offset by half a pitch.
    for top in range(30, 118, 10):
        if in_round_rect(x, y, 51, top, 65, top + 5, 2):
            colour = TOOTH
        if in_round_rect(x, y, 63, top + 5, 77, top + 10, 2):
            colour = TOOTH
    # The slider at the top of the teeth, and the pull tab hanging from it.
    if in_round_rect(x, y, 52, 12, 76, 32, 5):
        colour = METAL
    if in_round_rect(x, y, 57, 28, 71, 60, 5):
        colour = METAL
        if in_round_rect(x, y, 61, 44, 67, 55, 3):  # the hole in the tab
            colour = TAPE
    return colour + (255,)


def pixels():
    rows = []
    n = SS * SS
    for py in range(SIZE):
        row = bytearray([0])  # filter type 0 (None) for every scanline
        for px in range(SIZE):
            acc = [0, 0, 0, 0]
            for sy in range(SS):
                for sx in range(SS):
                    r, g, b, a = sample(px + (sx + 0.5) / SS, py + (sy + 0.5) / SS)
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            a = acc[3]
            if a == 0:
                row += b"\0\0\0\0"
            else:
                row += bytes((round(acc[0] / a), round(acc[1] / a), round(acc[2] / a), round(a / n)))
        rows.append(bytes(row))
    return b"".join(rows)


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png():
    ihdr = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(pixels(), 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site", "img", "logo.png")
    data = png()
    with open(out, "wb") as f:
        f.write(data)
    print(f"wrote {out} ({len(data)} bytes, {SIZE}x{SIZE} RGBA)")
