#!/usr/bin/env python3
"""Scale benchmark (issue 6): `kam run` end to end and by stage against the floor (calamine
alone reading every cell of the same workbook) at several sizes, with peak memory, the 2-thread
speedup over --jobs 1 and the cost growth per account. Ratios are measured in the same run.

    python3 benches/scale_bench.py [--sizes 1000,100000,1000000] [--reps 3]

Workbooks come from `kam sample` (transactions 10 per account and activities 2 per account, at
most 1 000 000 lines each; cached under target/bench/). `kam run --no-plans`: the targets are
stated without per-account plans (the portfolio summary, the manager reviews and every export
are written). Exports and reports run at the same time, so their stage times overlap.
"""
import argparse, os, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import import_bench as ib  # noqa: E402

ROOT = ib.ROOT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kam", "--example", "calamine_floor"],
                   cwd=ROOT, check=True)
    kam = os.path.join(ROOT, "target/release/kam")
    floor = os.path.join(ROOT, "target/release/examples/calamine_floor")
    bench = os.path.join(ROOT, "target/bench")
    os.makedirs(bench, exist_ok=True)
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        tx, act = min(10 * n, 1_000_000), min(2 * n, 1_000_000)
        book = os.path.join(bench, f"scale-{n}.xlsx")
        if not os.path.exists(book):
            t, _ = ib.measure([kam, "sample", "--quiet", "--accounts", str(n), "--kams", str(max(5, n // 500)),
                               "--seed", "1", "--transactions", str(tx), "--activities", str(act), book])
            print(f"generated {book} in {t:.1f} s", flush=True)
        out = os.path.join(bench, f"scale-out-{n}")
        run2 = [kam, "run", "--quiet", "--timings", "--no-plans", "--jobs", "2", "--out", out, book]
        run1 = [kam, "run", "--quiet", "--timings", "--no-plans", "--jobs", "1", "--out", out, book]
        ib.STAGES.clear()
        floors, twos, ones = [], [], []
        for _ in range(a.reps):  # alternating: the machine is shared
            floors.append(ib.measure([floor, book]))
            twos.append(ib.measure(run2))
        stages = {k: statistics.median(v) for k, v in ib.STAGES.items()}
        ones.append(ib.measure(run1))
        ft = statistics.median(t for t, _ in floors)
        k2 = statistics.median(t for t, _ in twos)
        k1 = min(t for t, _ in ones)
        fm = max(m for _, m in floors)
        km = max(m for _, m in twos)
        rows.append((n, ft, k2, k1, fm, km, stages))
        print(f"{n} accounts ({tx} transaction lines, {act} activities, {os.path.getsize(book) / 2**20:.1f} MiB):", flush=True)
        print(f"  floor {ft:.2f} s, {fm:.0f} MiB; kam run {k2:.2f} s on 2 threads, {k1:.2f} s on 1, {km:.0f} MiB")
        print("  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
        print(f"  end to end / floor {k2 / ft:.2f}x (target <= 1.5x); peak memory / floor {km / fm:.2f}x "
              f"(target <= 2.5x); 2-thread speedup {k1 / k2:.2f}x", flush=True)
    if len(rows) > 1:
        base = rows[0]
        print("cost growth (seconds per account, relative to the smallest size; linear or better is <= 1):")
        for n, ft, k2, *_ in rows[1:]:
            print(f"  {n}: kam {(k2 / n) / (base[2] / base[0]):.2f}, floor {(ft / n) / (base[1] / base[0]):.2f}")


if __name__ == "__main__":
    main()
