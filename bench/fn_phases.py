#!/usr/bin/python3
"""bench/fn_phases.py -- where a function's cold start goes, step by step.

Reads the lines a server started with TARN_TRACE_STARTS=FILE wrote (one per
cold start: ms from the Invoke's admission to the end of each step, see
src/fn/scheduler.c trace_start) and prints, per runtime, the median end of
each step and the median time spent in it (its end minus the previous
step's end, both in the same start). Usage: fn_phases.py FILE
"""
import statistics
import sys
from collections import defaultdict


def main():
    runs = defaultdict(list)
    for line in open(sys.argv[1]):
        parts = line.split()
        if len(parts) < 4 or parts[0] != "cold":
            continue
        steps = [(k, float(v)) for k, v in (p.split("=", 1) for p in parts[3:])]
        runs[parts[1]].append(steps)
    for runtime, starts in sorted(runs.items()):
        names = [k for k, _ in starts[0]]
        print(f"{runtime}: {len(starts)} cold starts (ms; end = since the Invoke was admitted)")
        print(f"  {'step':<16}{'end p50':>9}{'spent p50':>11}{'spent p90':>11}")
        for i, name in enumerate(names):
            ends, spent = [], []
            for s in starts:
                d = dict(s)
                if name not in d:
                    continue
                ends.append(d[name])
                prev = [v for k, v in s[:[k for k, _ in s].index(name)]]
                spent.append(d[name] - (prev[-1] if prev else 0.0))
            if not ends:
                continue
            spent.sort()
            p90 = spent[min(len(spent) - 1, int(len(spent) * 0.9))]
            print(f"  {name:<16}{statistics.median(ends):9.3f}{statistics.median(spent):11.3f}{p90:11.3f}")
        print()


main()
