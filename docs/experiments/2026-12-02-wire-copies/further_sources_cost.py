"""What naming a story's further sources adds to a question: ``QABot._further_sources`` timed
200 times over the passages of one question, on a store that holds a grouped copy.

    cd <a folder with a config.yaml whose store holds a feed with a wire copy>
    python /path/to/repo/docs/experiments/2026-12-02-wire-copies/further_sources_cost.py
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from qa_bot import QABot
from qa_bot.settings import load_settings

bot = QABot(load_settings("config.yaml"))
passages = bot.retrieve(sys.argv[1] if len(sys.argv) > 1 else "Berlin Christmas market attack suspect")
times = []
for _ in range(200):
    began = time.perf_counter()
    bot._further_sources(passages)
    times.append((time.perf_counter() - began) * 1000)
times.sort()
print(f"{len(passages)} passages: p50 {statistics.median(times):.2f} ms, p99 {times[197]:.2f} ms")
print([(p.title, [o.source for o in p.also_reported_by]) for p in passages])
