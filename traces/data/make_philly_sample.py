"""Cuts the quickstart sample from the Philly job list (CC-BY-4.0, Jeon et al., ATC'19).

Usage: python3 traces/data/make_philly_sample.py ../shared/traces/philly-derived/pollux_philly.csv > traces/data/philly-sample.csv

Takes every job submitted in one day (2017-10-10, local time as recorded), numbers them in
submission order, and writes tessera's native CSV: submit_s counts from the window's start,
the virtual cluster becomes the tenant, devices are the job's GPU count, the duration is the
recorded one, and no GPU model is named (Philly records none).
"""
import csv
import datetime as dt
import sys

WINDOW_START = dt.datetime(2017, 10, 10)
WINDOW_END = WINDOW_START + dt.timedelta(days=1)

rows = []
with open(sys.argv[1], newline="") as f:
    for r in csv.DictReader(f):
        t = dt.datetime.strptime(r["timestamp"], "%Y-%m-%d %H:%M:%S")
        if WINDOW_START <= t < WINDOW_END:
            rows.append((t, r))
rows.sort(key=lambda tr: tr[0])  # stable: equal timestamps keep file order
out = csv.writer(sys.stdout, lineterminator="\n")
out.writerow(["job_id", "submit_s", "tenant", "priority", "devices", "models", "duration_s", "job_class"])
for i, (t, r) in enumerate(rows, start=1):
    submit_s = int((t - WINDOW_START).total_seconds())
    out.writerow([i, submit_s, r["cluster"], 0, int(r["num_gpus"]), "", float(r["duration"]), "philly"])
