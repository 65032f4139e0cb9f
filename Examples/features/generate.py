"""Generates the feature store example's data (standard library only, seeded: the same files every time).

data/orders.csv    order events: customer_id, order_time, loaded_at, amount, channel
data/profiles.csv  profile snapshots: customer_id, updated_at, plan, tenure_days
data/labels.csv    entity rows for training: customer_id, event_timestamp, churned (no order in the 30 days after)
"""
import csv
import datetime as dt
import os
import random
import sys

customers = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
random.seed(7)
start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
days = 240
os.makedirs("data", exist_ok=True)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


orders = []
profiles = []
for customer in range(1, customers + 1):
    plan = random.choice(["basic", "plus", "pro"])
    rate = {"basic": 0.08, "plus": 0.15, "pro": 0.3}[plan] * random.uniform(0.3, 1.7)
    # Some customers stop ordering partway: the churn the model learns to see coming from a slowing pace.
    stop = random.uniform(days * 0.3, days * 1.6)
    signup = random.uniform(0, 60)
    profiles.append((customer, start + dt.timedelta(days=signup), plan, int(400 - signup)))
    if random.random() < 0.3:
        profiles.append((customer, start + dt.timedelta(days=random.uniform(signup, days)), "pro", int(500 - signup)))
    t = signup
    while True:
        slowing = 1.0 if t < stop - 45 else 0.35
        t += random.expovariate(rate * slowing)
        if t > min(stop, days):
            break
        when = start + dt.timedelta(days=t)
        loaded = when + dt.timedelta(minutes=random.randint(1, 90))
        amount = round(random.lognormvariate(3.2 if plan != "basic" else 2.8, 0.6), 2)
        orders.append((customer, when, loaded, amount, random.choice(["web", "app", "store"])))

orders.sort(key=lambda row: row[1])
with open("data/orders.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "order_time", "loaded_at", "amount", "channel"])
    for c, t, loaded, amount, channel in orders:
        w.writerow([c, iso(t), iso(loaded), amount, channel])
with open("data/profiles.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "updated_at", "plan", "tenure_days"])
    for c, t, plan, tenure in sorted(profiles, key=lambda row: row[1]):
        w.writerow([c, iso(t), plan, tenure])

by_customer = {}
for c, t, _, _, _ in orders:
    by_customer.setdefault(c, []).append(t)
with open("data/labels.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "event_timestamp", "churned"])
    for customer in range(1, customers + 1):
        for _ in range(3):
            t = start + dt.timedelta(days=random.uniform(70, days - 35))
            times = by_customer.get(customer, [])
            later = any(t < o <= t + dt.timedelta(days=30) for o in times)
            w.writerow([customer, iso(t), "no" if later else "yes"])
print(f"{len(orders)} orders, {len(profiles)} profile rows, {customers * 3} labels in data/")
