import json, sys
from datetime import date
sys.path.insert(0, ".")
from benchmarks.temporal_retrieval import about_now
for f in sys.argv[1:]:
    d = json.load(open(f))["per_question"]["qa-bot"]
    now = [r for r in d if about_now(r["question"], date.fromisoformat(r["asked_on"]))]
    ages = [(date.fromisoformat(r["asked_on"]) - date.fromisoformat(c)).days for r in now if not r["refused"] for c in r["cited_dates"] if c]
    print(f, "now questions", len(now), "answered", sum(not r["refused"] for r in now), "right", sum(bool(r["choice_right"]) for r in now),
          "cited", len(ages), "old", sum(a > 30 for a in ages), round(sum(a > 30 for a in ages) / max(1, len(ages)), 3))
    changed = []
