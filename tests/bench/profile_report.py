#!/usr/bin/env python3
"""Summarise py-spy raw (collapsed) profiles: ``python profile_report.py FILE [--top N]``.

Prints the functions with the most inclusive and the most self samples.
Profiles come from running any benchmark with ``BENCH_PYSPY=<dir>`` set.
"""

from __future__ import annotations

import argparse
import collections
import re


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="only stacks containing this text")
    args = parser.parse_args()
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    with open(args.file, encoding="utf-8") as lines:
        stack_lines = list(lines)
    for line in stack_lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or (args.match and args.match not in stack):
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \(.*?/(site-packages|lib/python3\.\d+|main)/", " (", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    print(f"{total} samples\n\ninclusive:")
    for frame, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:6.1f}%  {frame}")
    print("\nself:")
    for frame, n in own.most_common(args.top):
        print(f"{100 * n / total:6.1f}%  {frame}")


if __name__ == "__main__":
    main()
