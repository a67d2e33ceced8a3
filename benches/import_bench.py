#!/usr/bin/env python3
"""Import benchmark: `kam run` end to end against the floor (calamine alone reading every cell
of the same workbook), as ratios measured in the same run, with peak memory (max RSS).

    python3 benches/import_bench.py [--accounts 100000] [--transactions 1000000]
                                    [--activities 200000] [--reps 3] [--jobs N]

Builds the release binary and the floor example, generates the workbook with `kam sample`
(cached under target/bench/), then alternates floor and kam runs and reports the medians.
"""
import argparse, os, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


STAGES = {}


def wait_for_removal(cmd):
    """`kam run` removes the output it replaces in the background, after it has returned
    (`.NAME.kam-tmp-PID.old` beside `--out`): waits until that is done, so that it never
    overlaps the next measurement, and returns how long it went on after kam returned."""
    if "--out" not in cmd:
        return 0.0
    parent, name = os.path.split(os.path.abspath(cmd[cmd.index("--out") + 1]))
    start = time.perf_counter()
    while any(n.startswith(f".{name}.kam-tmp-") and n.endswith(".old") for n in os.listdir(parent)):
        time.sleep(0.01)
    return time.perf_counter() - start


def measure(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    removal = wait_for_removal(cmd)
    for line in err.splitlines():
        if line.startswith("kam: timings:"):
            # "import 1.2 s, scoring 3.4 s (of which KAM metrics 0.7 s), exports ..."
            for name, secs in re.findall(r"([a-zA-Z][a-zA-Z ]*?) ([0-9.]+) s", line.split(":", 2)[2]):
                name = name.replace("of which ", "").strip().replace(" ", "_")
                STAGES.setdefault(name, []).append(float(secs))
            STAGES.setdefault("background_removal", []).append(removal)
    return elapsed, usage.ru_maxrss / 1024.0  # MiB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--transactions", type=int, default=1_000_000)
    ap.add_argument("--activities", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None)
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kam", "--example", "calamine_floor"], cwd=ROOT, check=True)
    kam = os.path.join(ROOT, "target/release/kam")
    floor = os.path.join(ROOT, "target/release/examples/calamine_floor")
    bench = os.path.join(ROOT, "target/bench")
    os.makedirs(bench, exist_ok=True)
    book = os.path.join(bench, f"sample-{a.accounts}-{a.transactions}-{a.activities}.xlsx")
    if not os.path.exists(book):
        t, _ = measure([kam, "sample", "--quiet", "--accounts", str(a.accounts), "--kams", "200", "--seed", "1",
                        "--transactions", str(a.transactions), "--activities", str(a.activities), book])
        print(f"generated {book} in {t:.1f} s")
    size = os.path.getsize(book) / 2**20
    run = [kam, "run", "--quiet", "--timings", "--out", os.path.join(bench, "out"), book]
    if a.jobs:
        run += ["--jobs", str(a.jobs)]
    floors, kams = [], []
    for _ in range(a.reps):
        floors.append(measure([floor, book]))
        kams.append(measure(run))
    ft = statistics.median(t for t, _ in floors)
    kt = statistics.median(t for t, _ in kams)
    fm = max(m for _, m in floors)
    km = max(m for _, m in kams)
    print(f"workbook: {a.accounts} accounts, {a.transactions} transaction lines, {a.activities} activities, {size:.1f} MiB")
    print(f"floor (calamine reads every cell): {ft:.2f} s, peak {fm:.0f} MiB   (runs: {', '.join(f'{t:.2f}' for t, _ in floors)})")
    print(f"kam run (import, scoring, outputs): {kt:.2f} s, peak {km:.0f} MiB   (runs: {', '.join(f'{t:.2f}' for t, _ in kams)})")
    stages = {k: statistics.median(v) for k, v in STAGES.items()}
    print("kam stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    print(f"import stage / floor {stages['import'] / ft:.2f}x (target <= 1.3x); end to end / floor {kt / ft:.2f}x; "
          f"peak memory / floor {km / fm:.2f}x")


if __name__ == "__main__":
    main()
