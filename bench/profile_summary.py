#!/usr/bin/env python3
"""Summarise a py-spy raw profile (folded stacks, `frame;frame;... count` per line): the share of samples
each function is on the stack (inclusive) and on top of it (self), the largest first.

Usage: .venv/bin/python bench/profile_summary.py PROFILE.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^)]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`handle (freqfeed/gateway/app.py:160)` -> `handle (freqfeed/gateway/app.py)`: lines folded."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    file = file.split("files/python/", 1)[-1]
    return f"{match['name']} ({file})"


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, inclusive, own = summarise(args.profile)
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples")
    for title, counter in (("self (on top of the stack)", own), ("inclusive (anywhere on the stack)", inclusive)):
        print(f"\n{title}:")
        for name, count in counter.most_common(args.top):
            print(f"  {100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
