"""The normaliser's speed on the notice corpus, for ``bench/render.py`` (no side effects).

``corpus_rate()`` reads tests/data/notices_vi.tsv (the 250 sentences the corpus test
checks) and returns ``{"normaliser_sentences_per_s": float}``: how many real notices a
second ``audio.normalize_vi.normalize`` reads, measured over at least ``min_s`` seconds
of repeated passes (the first pass, which compiles nothing but warms caches, is not
counted).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from audio.normalize_vi import normalize

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "notices_vi.tsv"


def corpus_sentences(path: Path = CORPUS) -> list[str]:
    """The written column of the corpus (comments and the header skipped)."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row[1] for row in rows[1:] if row]


def corpus_rate(min_s: float = 1.0, max_passes: int = 1000) -> dict[str, float]:
    """Sentences per second through the normaliser, over ``min_s`` s (bounded passes)."""
    sentences = corpus_sentences()
    for text in sentences:  # warm-up pass
        normalize(text)
    done, passes = 0, 0
    t0 = time.perf_counter()
    while passes < max_passes:
        for text in sentences:
            normalize(text)
        done += len(sentences)
        passes += 1
        if time.perf_counter() - t0 >= min_s:
            break
    elapsed = time.perf_counter() - t0
    return {"normaliser_sentences_per_s": round(done / elapsed, 1)}
