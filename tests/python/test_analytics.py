"""The server's analytics checked against an independent computation: a programme of 100,000
members and a year and a half of receipts is generated here (numpy), written into the server's
SQLite database, analysed by `tessera serve` (a run asked for through the admin API), and every
figure of the report recomputed with pandas from the same rows: active members, RFM classes and
their spend, the named segments, monthly retention, cohorts, CLV and its margin-aware variant,
and the recency baseline's AUC (scikit-learn's `roc_auc_score`); members' scores are compared
one by one on a sample. Voided purchases and purchases returned in full are in the data and must
not count; partial returns count net.
"""

import datetime as dt
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from conftest import call, serve

DAY_MS = 86_400_000
MEMBERS = 100_000



def generate(as_of_day, rng):
    """Members enrolled over two years; each buys at their own pace from enrolment until a day
    they stop (some never start)."""
    enrolled = as_of_day - rng.integers(1, 730, MEMBERS)
    pace = 3.0 * 20.0 ** rng.random(MEMBERS)  # days between purchases, 3 to 60
    stop = enrolled + rng.exponential(400.0, MEMBERS).astype(np.int64)
    end = np.minimum(stop, as_of_day + 30)  # a few purchases after the day: must not count
    span = np.maximum(end - enrolled, 0)
    counts = rng.poisson(span / pace)
    counts[rng.random(MEMBERS) < 0.05] = 0
    owner = np.repeat(np.arange(MEMBERS), counts)
    day = enrolled[owner] + (rng.random(owner.size) * span[owner]).astype(np.int64)
    total = rng.integers(500, 12_000, owner.size)
    returned = np.where(rng.random(owner.size) < 0.03, total, 0)  # returned in full
    partial = rng.random(owner.size) < 0.05
    returned = np.where(partial & (returned == 0), total // 4, returned)
    voided = rng.random(owner.size) < 0.02
    at = day * DAY_MS + rng.integers(0, DAY_MS, owner.size)
    purchases = pd.DataFrame({
        "member": owner, "at_ms": at, "total": total, "returned": returned,
        "voided": voided, "points": total // 100,
    })
    members = pd.DataFrame({"member": np.arange(MEMBERS), "created_at": enrolled * DAY_MS + 3_600_000})
    return members, purchases


def write(db, members, purchases):
    c = sqlite3.connect(db)
    ids = [f"m_{i:06d}" for i in range(MEMBERS)]
    c.executemany(
        "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)"
        " VALUES (?, ?, ?, '2025-01-01', 'classic', ?)",
        ((ids[i], f"9{i:011d}", f"Member {i}", int(t)) for i, t in zip(members.member, members.created_at)),
    )
    rows = zip(purchases.index, purchases.member, purchases.at_ms, purchases.total, purchases.returned,
               purchases.voided, purchases.points)
    c.executemany(
        "INSERT INTO purchase (id, store_id, till_id, receipt, member_id, total_cents, lines,"
        " occurred_at, recorded_at, points, returned_cents, voided_at)"
        " VALUES (?, 'st-paris-01', 'till-1', ?, ?, ?, '[]', ?, ?, ?, ?, ?)",
        ((f"p{n}", f"R{n}", ids[m], int(t), int(a), int(a), int(p), int(r), int(a) if v else None)
         for n, m, a, t, r, v, p in rows),
    )
    c.commit()
    c.close()
    return ids


def expected(members, purchases, as_of, settings):
    """Every figure of the report, by pandas."""
    p = purchases[~purchases.voided].copy()
    p["net"] = p.total - p.returned
    p["day"] = p.at_ms // DAY_MS
    p = p[(p.net > 0) & (p.day < as_of)]
    m = members[members.created_at < as_of * DAY_MS].set_index("member")
    p = p[p.member.isin(m.index)]
    window = settings["rfm_window_days"]
    g = p.groupby("member")
    last = g.day.max()
    in_window = p[p.day >= as_of - window].groupby("member")
    freq = in_window.size().reindex(last.index, fill_value=0)
    spend = in_window.net.sum().reindex(last.index, fill_value=0)
    recency = as_of - last
    n = len(last)
    # 1 + ⌊5 × (buyers strictly worse + ties / 2) / buyers⌋ (the mid-rank percentile).
    def score(values, ascending=True):
        worse = values.rank(ascending=ascending, method="min") - 1
        ties = values.rank(method="max") - values.rank(method="min") + 1
        return 1 + (10 * worse + 5 * ties) // (2 * n)

    r = score(recency, ascending=False)
    f = score(freq)
    mo = score(spend)
    rfm = pd.DataFrame({"recency": recency, "purchases": freq, "spend": spend,
                        "r": r.clip(upper=5).astype(int), "f": f.clip(upper=5).astype(int),
                        "m": mo.clip(upper=5).astype(int)})

    def klass(row):
        R, F = row.r, row.f
        if R >= 4 and F >= 4:
            return "champions"
        if R >= 3 and F >= 3:
            return "loyal"
        if R >= 4:
            return "promising"
        if R == 3:
            return "needs_attention"
        if F >= 3:
            return "at_risk"
        return "hibernating"

    rfm["class"] = rfm.apply(klass, axis=1)

    segments = {}
    for rule in settings["segments"]:
        if "churn_risk_at_least_percent" in rule:
            continue
        w = p[p.day >= as_of - rule["window_days"]].groupby("member")
        cnt = w.size().reindex(last.index, fill_value=0)
        amt = w.net.sum().reindex(last.index, fill_value=0)
        ok = pd.Series(True, index=last.index)
        if "last_purchase_under_days" in rule:
            ok &= recency < rule["last_purchase_under_days"]
        if "no_purchase_for_days" in rule:
            ok &= recency >= rule["no_purchase_for_days"]
        if "purchases_over" in rule:
            ok &= cnt > rule["purchases_over"]
        if "spend_over_cents" in rule:
            ok &= amt > rule["spend_over_cents"]
        segments[rule["name"]] = ok

    # Calendar months.
    p["month"] = pd.to_datetime(p.day, unit="D").dt.to_period("M")
    as_of_month = pd.Timestamp(as_of * DAY_MS, unit="ms").to_period("M")
    months = [as_of_month - k for k in range(12, 0, -1)]
    active = p.groupby("month").member.agg(lambda s: set(s))
    first = g.day.min().pipe(lambda d: pd.to_datetime(d, unit="D").dt.to_period("M"))
    retention = []
    for mo_ in months:
        start = active.get(mo_ - 1, set())
        end = active.get(mo_, set())
        new = {x for x in end if first[x] == mo_}
        rate = (len(end) - len(new)) / len(start) if start else None
        retention.append((str(mo_), len(start), len(end), len(new), rate))

    cohort_month = pd.to_datetime(m.created_at // DAY_MS, unit="D").dt.to_period("M")
    cohorts = []
    for mo_ in months:
        who = set(cohort_month[cohort_month == mo_].index)
        shares = []
        k = mo_
        while k <= months[-1]:
            shares.append(len(who & active.get(k, set())) / len(who) if who else 0.0)
            k += 1
        cohorts.append((str(mo_), len(who), shares))

    year = p[p.day >= as_of - 365]
    prior = p[(p.day >= as_of - 730) & (p.day < as_of - 365)]
    basket = year.net.sum() / len(year)
    per_year = len(year) / year.member.nunique()
    before = set(prior.member)
    retention_y = len(before & set(year.member)) / len(before) if before else None
    lifespan = 1.0 if retention_y is None else (10.0 if retention_y >= 0.9 else 1 / (1 - retention_y))
    reward = year.points.sum() * settings["point_cost_millicents"] / 1000 / len(year)
    margin = settings["margin_percent"] / 100
    clv = (basket * per_year * lifespan, (basket * margin - reward) * per_year * lifespan,
           basket, per_year, retention_y)

    # The recency baseline on the held-out period: members who bought in the year before the
    # cutoff, churned = nothing bought in the horizon after it.
    h = settings["churn_horizon_days"]
    cut = as_of - h
    before_cut = p[p.day < cut]
    last_cut = before_cut.groupby("member").day.max()
    eligible = last_cut[last_cut >= cut - 365]
    after = set(p[(p.day >= cut) & (p.day < cut + h)].member)
    churned = np.array([x not in after for x in eligible.index])
    baseline = roc_auc_score(churned, (cut - eligible).to_numpy())
    return {
        "members": len(m), "buyers": n, "active_30": int((recency <= 30).sum()),
        "active_90": int((recency <= 90).sum()),
        "visits_30": int((p.day >= as_of - 30).sum()), "visits_90": int((p.day >= as_of - 90).sum()), "rfm": rfm, "segments": segments,
        "retention": retention, "cohorts": cohorts, "clv": clv,
        "recency_auc": baseline, "test_members": len(eligible), "churn_rate": churned.mean(),
    }


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def test_the_analysis_agrees_with_pandas_on_100000_members():
    today = dt.datetime.now(dt.timezone.utc).date()
    as_of = (today - dt.date(1970, 1, 1)).days
    members, purchases = generate(as_of, np.random.default_rng(19))
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "analytics.db")
        with serve(db=db):
            pass  # migrated
        started = time.monotonic()
        ids = write(db, members, purchases)
        print(f"\n{len(members)} members, {len(purchases)} purchases written in {time.monotonic() - started:.1f} s")
        with serve(db=db) as url:
            status, run = call(url, "POST", "/admin/v1/analytics/runs")
            assert status == 202
            started = time.monotonic()
            while True:
                _, state = call(url, "GET", f"/admin/v1/analytics/runs/{run['run']}")
                assert state["state"] != "failed", state
                if state["state"] == "done":
                    break
                assert time.monotonic() - started < 600, state
                time.sleep(0.5)
            print(f"analysed in {time.monotonic() - started:.1f} s")
            _, report = call(url, "GET", "/admin/v1/analytics")
            sample = np.random.default_rng(7).choice(MEMBERS, 300, replace=False)
            scores = {i: call(url, "GET", f"/admin/v1/analytics/members/{ids[i]}")[1] for i in sample}

    as_of = (dt.date.fromisoformat(report["as_of"]) - dt.date(1970, 1, 1)).days
    want = expected(members, purchases, as_of, report["settings"])
    assert (report["members"], report["buyers"]) == (want["members"], want["buyers"])
    assert (report["active_30"], report["active_90"]) == (want["active_30"], want["active_90"])
    assert (report["visits_30"], report["visits_90"]) == (want["visits_30"], want["visits_90"])

    rfm = want["rfm"]
    classes = {c["class"]: c for c in report["rfm"]}
    by_class = rfm.groupby("class")
    for name, c in classes.items():
        if name == "no_purchase":
            assert c["members"] == want["members"] - want["buyers"]
            continue
        members_in = int(by_class.size().get(name, 0))
        assert (c["members"], c["spend_cents"]) == (members_in, int(by_class.spend.sum().get(name, 0))), name

    counts = {s["name"]: s["members"] for s in report["segments"]}
    for name, ok in want["segments"].items():
        assert counts[name] == int(ok.sum()), name

    got = [(r["month"], r["at_start"], r["at_end"], r["new"], r["rate"]) for r in report["retention"]]
    for g, w in zip(got, want["retention"], strict=True):
        assert g[:4] == w[:4]
        assert (g[4] is None and w[4] is None) or close(g[4], w[4])
    for g, (month, size, shares) in zip(report["cohorts"], want["cohorts"], strict=True):
        assert (g["month"], g["members"]) == (month, size)
        assert all(close(a, b) for a, b in zip(g["active"], shares, strict=True)), month

    clv, margin_clv, basket, per_year, retention_y = want["clv"]
    c = report["clv"]
    assert close(c["average_basket_cents"], basket) and close(c["purchases_per_year"], per_year)
    assert close(c["annual_retention"], retention_y)
    assert close(c["clv_cents"], clv) and close(c["margin_clv_cents"], margin_clv)

    churn = report["churn"]
    assert churn is not None, report.get("churn_note")
    assert churn["test_members"] == want["test_members"]
    assert close(churn["test_churn_rate"], want["churn_rate"])
    assert close(churn["recency_auc"], want["recency_auc"], 1e-12)
    assert churn["auc"] > 0.5
    print(f"churn model: AUC {churn['auc']:.4f} against recency alone {churn['recency_auc']:.4f}"
          f" (scikit-learn: {want['recency_auc']:.4f}); trained in {churn['training_ms']} ms"
          f" on {churn['training_members']} members")

    for i, s in scores.items():
        if i not in rfm.index:
            assert s["rfm_class"] == "no_purchase" and s["recency_days"] is None, s
            continue
        row = rfm.loc[i]
        assert (s["recency_days"], s["purchases"], s["spend_cents"]) == (row.recency, row.purchases, row.spend), s
        assert (s["r"], s["f"], s["m"], s["rfm_class"]) == (row.r, row.f, row.m, row["class"]), s
        named = {n for n, ok in want["segments"].items() if ok.get(i, False)}
        assert named == set(s["segments"]) - {"likely_to_churn"}, s
        assert (s["churn_risk"] is not None) == (row.recency <= 365), s
