#!/usr/bin/env python3
"""Independent check of the default KAM-performance pack on the embedded sample.

Reads the sample's CSV source (samples/kam-sample/) — not kam's output — and applies the
methodology with the pack's default params by hand: period = 2026 (the year of the latest
activity), data as of the latest activity or contact date. tests/cli.rs pins what this prints;
rerun it after changing the sample or the defaults:  python3 tests/expected/kam_performance_sample.py
"""
import csv, datetime as dt, os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
def read(n):
    return list(csv.DictReader(open(os.path.join(ROOT, "samples/kam-sample", n), encoding="utf-8")))
accounts, contacts, acts = read("01-Accounts.csv"), read("03-Contacts.csv"), read("04-Activities.csv")
tenders, managers = read("05-Tenders.csv"), read("06-Managers.csv")

LATE, LATE_SHARE, UNPREP_SHARE, FOLLOW, PREP_MONTHS = 10, 0.2, 0.2, 1, 9
REL, INFL, DOSSIER_MIN, PK_MIN = 4, 4, 0.6, 3
LARGE_FROM, LARGE_RATE, MEDIUM_RATE, MARGIN_RATE = 1_000_000, 0.05, 0.12, 0.05
KEY = {"A01", "A02", "A03", "A06", "A15", "A16", "A29"}  # bands marked key (issue 3)

def d(s):
    return dt.date.fromisoformat(s[:10]) if s else None
def t(s):
    return dt.datetime.fromisoformat(s) if s else None
def bdays(a, b):  # weekdays after a up to and including b
    n, x = 0, a
    while x < b:
        x += dt.timedelta(days=1)
        n += x.weekday() < 5
    return n
def months(a, b):
    n = (b.year - a.year) * 12 + b.month - a.month - (b.day < a.day)
    def shift(k):
        m = a.month - 1 + k
        y, m = a.year + m // 12, m % 12 + 1
        last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
        return dt.date(y, m, min(a.day, last))
    s, e = shift(n), shift(n + 1)
    return n + (b - s).days / (e - s).days

as_of = max([d(a["Date"]) for a in acts] + [d(c["Last contact"]) for c in contacts if c["Last contact"]])
in_period = lambda x: x is not None and x.year == 2026
acc_kam = {a["Account ID"]: a["KAM"] for a in accounts}
name = {a["Account ID"]: a for a in accounts}
print(f"as of {as_of}")
results = {}
for m in managers:
    k = m["KAM ID"]
    A = [a for a in acts if (a["KAM"] or acc_kam[a["Account ID"]]) == k and in_period(d(a["Date"]))]
    meetings = [a for a in A if a["Type"] == "Meeting"]
    timed = [a for a in meetings if a["Planned start"] and a["Actual start"]]
    late = [a for a in timed if (t(a["Actual start"]) - t(a["Planned start"])).total_seconds() / 60 > LATE]
    no_agenda = [a for a in meetings if a["Agenda"] == "FALSE"]
    with_agenda_known = [a for a in meetings if a["Agenda"] in ("TRUE", "FALSE")]
    proposals = [a for a in A if a["Type"] == "Proposal"]
    def needs(a):
        return not a["Confirmed"] or bdays(d(a["Date"]), d(a["Confirmed"])) > FOLLOW
    late_fu = [a for a in proposals if needs(a) and a["Followed up"] and bdays(d(a["Date"]), d(a["Followed up"])) > FOLLOW]
    overdue = [a for a in proposals if needs(a) and not a["Followed up"] and bdays(d(a["Date"]), as_of) > FOLLOW]
    no_expiry = [a for a in proposals if not a["Expiry"]]
    T = [x for x in tenders if acc_kam[x["Account ID"]] == k and in_period(d(x["Tender date"]))]
    t_late = [x for x in T if months(d(x["Preparation start"]), d(x["Tender date"])) < PREP_MONTHS]
    decided = [x for x in T if x["Outcome"] in ("Won", "Lost")]
    won = [x for x in decided if x["Outcome"] == "Won"]
    C = [c for c in contacts if acc_kam[c["Account ID"]] == k]
    key_people = [c for c in C if c["Role"].lower() in ("executive", "vip", "kol") or float(c["Influence"]) >= INFL]
    covered = [c for c in key_people if float(c["Relationship"]) >= REL]
    mine = [a for a in accounts if a["KAM"] == k]
    revenue = sum(float(a["Revenue"]) for a in mine)
    plan = float(m["Plan"])
    # Dossiers: key accounts and accounts with a DMU recorded.
    dossiers = []
    for a in mine:
        cs = [c for c in contacts if c["Account ID"] == a["Account ID"]]
        if a["Account ID"] not in KEY and not cs:
            continue
        fields = [a["Revenue"], a["Gross profit"], a["History"], a["Needs"], a["Development plans"]]
        total, filled = len(fields), sum(bool(f) for f in fields)
        if not cs:
            total += 1
        for c in cs:
            personal = [c["Role"], c["Birthday"], c["Hobbies"], c["Family"], c["Values"]]
            total += 5
            filled += sum(bool(f) for f in personal)
        dossiers.append((a["Account ID"], filled / total))
    completeness = sum(x for _, x in dossiers) / len(dossiers) if dossiers else None
    letters = sum(a["Type"] == "Reference letter" for a in A)
    referrals = sum(a["Type"] == "Referral" for a in A)
    open_complaints = sum(a["Type"] == "Complaint" and not a["Resolved"] for a in A)
    argued = sum(a["Argued"] == "TRUE" for a in meetings)
    interrupted = sum(a["Interrupted"] == "TRUE" for a in meetings)
    manners = sum(a["Bad manners"] == "TRUE" for a in meetings)
    mistakes = []
    if timed and len(late) / len(timed) > LATE_SHARE: mistakes.append("lateness")
    if argued: mistakes.append("arguing")
    if interrupted: mistakes.append("interrupting")
    if completeness is not None and completeness < DOSSIER_MIN: mistakes.append("missing_information")
    if with_agenda_known and len(no_agenda) / len(with_agenda_known) > UNPREP_SHARE: mistakes.append("insufficient_preparation")
    if manners: mistakes.append("bad_manners")
    if float(m["Product knowledge"]) < PK_MIN: mistakes.append("weak_product_knowledge")
    pay = 0.0
    for a in A:
        if a["Type"] != "Deal":
            continue
        amount, margin, rate = float(a["Amount"]), float(a["Margin"] or 0), float(m["Commission rate"])
        if m["Commission basis"] == "margin":
            pay += margin * rate
        elif amount >= LARGE_FROM:
            pay += amount * LARGE_RATE
        else:
            pay += amount * rate
    attainment = revenue / plan
    coverage = len(covered) / len(key_people) if key_people else None
    score = 25 if attainment >= 1 else 15 if attainment >= 0.8 else 5 if attainment >= 0.5 else 0
    if coverage is not None:
        score += 25 if coverage >= 0.8 else 15 if coverage >= 0.5 else 5 if coverage >= 0.25 else 0
    if decided and len(won) / len(decided) >= 0.5: score += 15
    score += min(2, letters + referrals) * 5
    score -= 3 * len(mistakes)
    if late_fu or overdue: score -= 3
    if t_late: score -= 3
    if open_complaints: score -= 2
    level = "D4" if attainment >= 1 and coverage is not None and coverage >= 0.8 else \
        "D3" if attainment >= 0.8 and coverage is not None and coverage >= 0.5 else \
        "D2" if attainment >= 0.5 else "D1"
    results[k] = score
    print(f"{k}: score {score}, plan {attainment:.6f}, coverage {len(covered)}/{len(key_people)}, "
          f"late {len(late)}/{len(timed)}, no agenda {len(no_agenda)}/{len(with_agenda_known)}, "
          f"late follow-ups {len(late_fu)}, overdue {len(overdue)}, no expiry {len(no_expiry)}/{len(proposals)}, "
          f"tenders late {len(t_late)}/{len(T)}, won {len(won)}/{len(decided)}, letters {letters}, referrals {referrals}, "
          f"open complaints {open_complaints}, dossier {completeness if completeness is None else round(completeness, 6)}, "
          f"mistakes {mistakes}, pay {pay:g}, suggested {level}")
print("ranking", sorted(results, key=lambda k: (-results[k], k)))
