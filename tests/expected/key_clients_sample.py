#!/usr/bin/env python3
"""Independent check of the default key-client pack on the embedded sample.

Reads the sample's CSV source (samples/kam-sample/) — not kam's output — and applies the
methodology's rules with the pack's default params by hand. tests/cli.rs pins what this prints;
rerun it after changing the sample or the defaults:  python3 tests/expected/key_clients_sample.py
"""
import csv, os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
rows = list(csv.DictReader(open(os.path.join(ROOT, "samples/kam-sample/01-Accounts.csv"), encoding="utf-8")))
contacts = list(csv.DictReader(open(os.path.join(ROOT, "samples/kam-sample/03-Contacts.csv"), encoding="utf-8")))

KEY, CRIT, MONO, A, B = 0.10, 0.20, 0.70, 0.80, 0.95
total_gp = sum(float(r["Gross profit"]) for r in rows)
total_rev = sum(float(r["Revenue"]) for r in rows)
order = sorted(rows, key=lambda r: (-float(r["Gross profit"]), r["Account ID"]))
cum, hhi, out = 0.0, 0.0, {}
for rank, r in enumerate(order, 1):
    s = float(r["Gross profit"]) / total_gp
    abc = "A" if cum < A else ("B" if cum < B else "C")
    dep = "mono" if s > MONO else "critical" if s > CRIT else "key" if s > KEY else "none"
    cum += s
    hhi += s * s
    wallet = float(r["Wallet"])
    sow = float(r["Revenue"]) / wallet
    labels, score = [], 0
    if s > KEY:
        labels.append("big_money"); score += 40
    if wallet / total_rev >= 0.05 and sow < 0.30:
        labels.append("big_potential"); score += 20
    if r["Reference"] == "TRUE" or float(r["Brand score"]) >= 4:
        labels.append("reference"); score += 15
    if float(r["Partnership"]) >= 4:
        labels.append("partner"); score += 15
    if float(r["Competence"]) >= 4:
        labels.append("more_competent"); score += 10
    if r["Innovator"] == "TRUE":
        labels.append("innovator"); score += 10
    band = "strategic" if score >= 60 else "key" if score >= 30 or "big_money" in labels else "develop" if score >= 15 else "standard"
    out[r["Account ID"]] = (rank, abc, dep, score, band, labels)

print(f"total gross profit {total_gp:.0f}, total revenue {total_rev:.0f}")
print(f"HHI {hhi:.8f} (x10000 {hhi*10000:.4f}), top1 {float(order[0]['Gross profit'])/total_gp}, "
      f"top5 {sum(float(r['Gross profit']) for r in order[:5])/total_gp:.3f}")
print("pareto (class A):", sum(1 for v in out.values() if v[1] == "A"))
for band in ["strategic", "key", "develop", "standard"]:
    print(band, sorted(k for k, v in out.items() if v[4] == band))
for dep in ["critical", "key"]:
    print("dependency", dep, sorted(k for k, v in out.items() if v[2] == dep))
print("class B", sorted(k for k, v in out.items() if v[1] == "B"))
for k in sorted(out):
    print(k, out[k])
