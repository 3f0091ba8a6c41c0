"""Issue 31's before/after over one store per set: every field of every question, the same or not."""

import json
from pathlib import Path

HERE = Path(__file__).parent
TIMINGS = {"latency", "first_token", "seconds", "timings", "first_cited"}  # the clock's, not the bot's
for before in sorted(HERE.glob("before-*.json")):
    name = before.stem.removeprefix("before-")
    after = HERE / f"after-{name}.json"
    if not after.exists():
        continue
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    assert [r["qid"] for r in a] == [r["qid"] for r in b]
    fields = sorted(set(a[0]) - TIMINGS)
    diffs = [(r["qid"], f) for r, s in zip(a, b, strict=True) for f in fields if r.get(f) != s.get(f)]
    print(f"{name}: {len(a)} questions, {len(fields)} fields each ({', '.join(fields)}); differing: {diffs or 'none'}")
