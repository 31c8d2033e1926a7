// The live broadcast page (/app/live): microphone -> AudioWorklet (16 kHz PCM) -> the
// hub's WebSocket (/api/live/ws); the page says what is true at each moment from what the
// hub answers, never from what it hopes. See hub/api/live.py for the messages.
"use strict";

(function () {
  const form = document.querySelector("[data-live-form]");
  if (!form) return;
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const words = data.live_words;
  const startBtn = document.getElementById("live-start");
  const stopBtn = document.getElementById("live-stop");
  const stateEl = document.getElementById("live-state");
  const elapsedEl = document.getElementById("live-elapsed");
  const level = document.getElementById("live-level");
  const recording = document.getElementById("live-recording");
  let ws = null, ctx = null, stream = null, timer = null, onAirAt = 0, ended = false;

  function say(kind, key, extra) {
    stateEl.dataset.state = kind;
    stateEl.textContent = words[key] + (extra ? " — " + extra : "");
  }

  function zones() {
    const picked = [...form.querySelectorAll("input[name=zone]:checked")].map((i) => i.value);
    return picked.length === 0 || picked.includes("all") ? ["all"] : picked;
  }

  function busy(on) {
    startBtn.hidden = on;
    stopBtn.hidden = !on;
    stopBtn.disabled = false;
    form.querySelectorAll("input").forEach((i) => (i.disabled = on));
  }

  function cleanup() {
    if (timer) clearInterval(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    stream = null;
    if (ctx) ctx.close();
    ctx = null;
    level.hidden = true;
    level.value = 0;
    busy(false);
    startBtn.textContent = words["onair.again"];
  }

  function tick() {
    const s = Math.floor((Date.now() - onAirAt) / 1000);
    const mm = String(Math.floor(s / 60)).padStart(2, "0");
    const ss = String(s % 60).padStart(2, "0");
    elapsedEl.textContent = words["onair.elapsed"] + " " + mm + ":" + ss;
  }

  function onMessage(ev) {
    const m = JSON.parse(ev.data);
    if (m.type === "state") {
      say(m.state, "onair.state." + m.state);
      if (m.state === "on_air") {
        onAirAt = Date.now();
        elapsedEl.hidden = false;
        level.hidden = false;
        tick();
        timer = setInterval(tick, 250);
      }
    } else if (m.type === "refused") {
      ended = true;
      const key = m.status === 409 ? "busy" : m.status === 403 ? "forbidden"
        : m.status === 401 ? "signed_out" : "other";
      say("refused", "onair.refused." + key, m.detail);
      cleanup();
    } else if (m.type === "ended") {
      ended = true;
      say("ended-" + m.reason, "onair.end." + m.reason);
      if (m.recording) {
        recording.hidden = false;
        recording.querySelector("a").href = "/app/announcements/" + encodeURIComponent(m.id);
      }
      cleanup();
    }
  }

  async function start() {
    ended = false;
    recording.hidden = true;
    elapsedEl.hidden = true;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioWorkletNode) {
      say("refused", "onair.refused." + (window.isSecureContext ? "unsupported" : "no_mic"));
      return;
    }
    busy(true);
    say("mic", "onair.state.mic");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (e) {
      say("refused", "onair.refused.mic_denied");
      cleanup();
      return;
    }
    ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("/static/live-worklet.js?v=" + encodeURIComponent(data.live_version));
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, "langso-pcm");
    const mute = ctx.createGain();
    mute.gain.value = 0; // pulled by the destination, heard nowhere
    source.connect(node).connect(mute).connect(ctx.destination);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(scheme + "//" + location.host + "/api/live/ws");
    ws.binaryType = "arraybuffer";
    say("connecting", "onair.state.connecting");
    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: "start",
        zones: zones(),
        title: form.querySelector("[name=title]").value || null,
        published: form.querySelector("[name=published]").checked,
        csrf: data.csrf,
      }));
    };
    node.port.onmessage = (e) => {
      level.value = e.data.peak;
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(e.data.pcm);
    };
    ws.onmessage = onMessage;
    ws.onclose = () => {
      if (!ended) {
        say("ended-lost", "onair.end.lost");
        cleanup();
      }
      ws = null;
    };
  }

  startBtn.addEventListener("click", () => { start(); });
  stopBtn.addEventListener("click", () => {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "stop" }));
      stopBtn.disabled = true;
      say("stopping", "onair.state.stopping");
    }
  });
})();
