"""Render benchmark: a one-minute Vietnamese TTS announcement, from text to PA WAV and web file.

Run from the repository root: ``.venv/bin/python bench/render.py [--runs 3]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "render", "espeak_s", "render_s", "ratio", "audio_s", "lufs", "true_peak",
     "speech_s", "render_cold_s", "runs", "web_kb", "wav_kb"}

Each run renders into a fresh, empty cache directory (no cache hit is possible) the whole
pipeline: normalise the text, espeak-ng, chimes, loudness to -16 LUFS / -1 dBTP, the PA
WAV and the Opus web file. Beside it, in the same run, espeak-ng alone speaks the same
(normalised) text: ``ratio`` = render_s / espeak_s says what the pipeline adds to the
synthesis. ``render_s`` and ``espeak_s`` are medians over the runs; ``render_cold_s`` is
the first run (it also generates the chimes, once per process). ``lufs`` and
``true_peak`` are measured on the written WAV by ffmpeg ebur128. Goal: render_s ≤ 1.5 s
on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
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


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
    espeak_s = statistics.median(espeak_times)
    render_s = statistics.median(render_times)
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
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
