#!/usr/bin/env python3
"""Writes jobs.csv: the conformance workload (native schema), made up here, seeded.

300 jobs over about three hours from three tenants, in three priority tiers: whole gangs of
1 to 8 devices, fractional shares of one device, CPU-only jobs, some pinned to GPU models,
three job classes, and about half of them stating a run time that is off by up to 50%.
Run: python3 scenarios/conform/make_jobs.py > scenarios/conform/jobs.csv
"""
import random

rng = random.Random(20261203)
print("job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,cpu_milli,mem_mib,stated_duration_s")
t = 0.0
for i in range(1, 301):
    t += rng.expovariate(1 / 36.0)
    tenant = rng.choice(["team-a", "team-a", "team-b", "team-c"])
    priority = rng.choice([0, 0, 0, 1, 1, 2])
    devices = rng.choice(["0.25", "0.5", "1", "1", "1", "2", "2", "4", "8", "0"])
    models = rng.choice(["", "", "", "", "V100-32GB|A100-80GB", "K80"]) if devices != "0" else ""
    duration = min(7200.0, max(30.0, rng.lognormvariate(6.3, 1.0)))
    job_class = rng.choice(["resnet50", "bert", "gpt2"])
    cpu_milli = rng.choice([1000, 2000, 4000])
    mem_mib = rng.choice([4096, 8192, 16384])
    stated = f"{duration * rng.uniform(0.5, 1.5):.1f}" if rng.random() < 0.5 else ""
    print(f"{i},{t:.1f},{tenant},{priority},{devices},{models},{duration:.1f},{job_class},{cpu_milli},{mem_mib},{stated}")
