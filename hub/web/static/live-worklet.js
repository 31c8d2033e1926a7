// Live broadcast: the microphone's samples (the AudioContext's rate, 44.1 or 48 kHz) as
// 16 kHz mono 16-bit PCM, 40 ms (640 samples) a message, with the message's peak for the
// level meter. Each output sample is the mean of the input samples of its period: a box
// low-pass against aliasing, enough for speech on horn loudspeakers (300 Hz - 7 kHz).
"use strict";

const OUT_RATE = 16000;
const FRAME = 640;

class LangsoPcm extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.acc = 0;
    this.n = 0;
    this.pos = 0;
    this.out = new Int16Array(FRAME);
    this.fill = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      this.acc += ch[i];
      this.n += 1;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        const v = Math.max(-1, Math.min(1, this.acc / this.n));
        this.acc = 0;
        this.n = 0;
        this.peak = Math.max(this.peak, Math.abs(v));
        this.out[this.fill++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.fill === FRAME) {
          const pcm = this.out.buffer;
          this.port.postMessage({ pcm, peak: this.peak }, [pcm]);
          this.out = new Int16Array(FRAME);
          this.fill = 0;
          this.peak = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("langso-pcm", LangsoPcm);
