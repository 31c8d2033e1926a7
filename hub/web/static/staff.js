/* Làng Số — the staff's announcement pages. Each works without this script; with it:
   - compose: the parts of the form that apply (source, when, how it repeats), the
     schedule as you pick it (the server makes the RRULE and says it in words), "listen" to the text
     (POST /api/tts/preview: the chosen voice, rate and times said, and how long it is),
     record in the browser (MediaRecorder) or pick a file, both uploaded to POST
     /api/audio, emergency's confirmation box;
   - the dashboard and the schedule: the list of next broadcasts follows the hub live
     (announcement, broadcast and playout events over /api/stream).
   Writes to the JSON API carry the session cookie and the X-CSRF-Token header. Words
   come from the page data (the server's catalogue). */
(function () {
  "use strict";

  var dataEl = document.getElementById("page-data");
  var page = dataEl ? JSON.parse(dataEl.textContent) : {};
  var T = page.t || {};

  function t(key, values) {
    var s = T[key] || key;
    if (values) {
      Object.keys(values).forEach(function (k) { s = s.split("{" + k + "}").join(String(values[k])); });
    }
    return s;
  }

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function clock(seconds) {
    var s = Math.max(0, Math.round(seconds || 0));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function say(node, text, state) {
    if (!node) return;
    node.textContent = text || "";
    node.classList.toggle("is-ok", state === "ok");
    node.classList.toggle("is-bad", state === "bad");
  }

  // The JSON API's refusals are {"detail": "..."}; anything else is said as it came.
  function reasonOf(response) {
    return response.text().then(function (body) {
      try { return JSON.parse(body).detail || body; } catch (e) { return body || String(response.status); }
    });
  }

  function apiPost(url, body, json) {
    var headers = { "X-CSRF-Token": page.csrf || "" };
    if (json) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: "POST", credentials: "same-origin", headers: headers,
      body: json ? JSON.stringify(body) : body
    }).then(function (r) {
      if (r.ok) return r;
      return reasonOf(r).then(function (reason) { throw new Error(reason); });
    });
  }

  $$("[data-js-only]").forEach(function (el) { el.hidden = false; });

  // -- compose ------------------------------------------------------------------------
  var audioStatus = null;  // where recording and upload say how it goes
  var form = $("form[data-compose]");
  if (form) compose(form);

  function compose(form) {
    $$("[data-source-fallback]", form).forEach(function (el) { el.parentNode.removeChild(el); });

    function value(name) {
      var field = form.elements[name];
      if (!field) return "";
      if (field.length !== undefined && field.tagName !== "SELECT") {
        var checked = $$("input[name='" + name + "']:checked", form)[0];
        return checked ? checked.value : "";
      }
      return field.value;
    }
    function values(name) {
      return $$("input[name='" + name + "']:checked", form).map(function (el) { return el.value; });
    }

    function showPanels() {
      var source = value("source") || "text";
      $$("[data-source-panel]", form).forEach(function (el) { el.hidden = el.getAttribute("data-source-panel") !== source; });
      var when = value("when");
      $$("[data-when-panel]", form).forEach(function (el) {
        el.hidden = el.getAttribute("data-when-panel").split(" ").indexOf(when) < 0;
      });
      var freq = value("freq");
      $$("[data-freq-panel]", form).forEach(function (el) { el.hidden = el.getAttribute("data-freq-panel") !== freq; });
      var ends = value("ends");
      $$("[data-ends-panel]", form).forEach(function (el) { el.hidden = el.getAttribute("data-ends-panel") !== ends; });
      var emergency = value("priority") === "emergency";
      $$("[data-emergency-only]", form).forEach(function (el) { el.hidden = !emergency; });
    }

    var preview = $("[data-sched-preview]", form);
    var pending = null;
    var asked = 0;
    function describe() {
      if (!preview) return;
      window.clearTimeout(pending);
      pending = window.setTimeout(function () {
        var q = new URLSearchParams();
        ["when", "priority", "date", "time", "freq", "monthday", "ends", "count", "until", "rrule_custom"].forEach(function (n) {
          q.append(n, value(n));
        });
        values("byday").forEach(function (d) { q.append("byday", d); });
        var mine = ++asked;
        fetch("/app/compose/describe?" + q.toString(), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (d) {
            if (!d || mine !== asked) return;  // an older answer, overtaken
            $("[data-sched-words]", preview).textContent = d.words || "";
            var next = $("[data-sched-next]", preview);
            $("[data-sched-next-list]", preview).textContent = (d.next || []).join(" · ");
            next.hidden = !(d.next && d.next.length);
            var err = $("[data-sched-error]", preview);
            err.textContent = d.error || "";
            err.hidden = !d.error;
            // The RRULE is the hub's (hub.web.forms.picker_rrule): the page makes none.
            $("[data-sched-rrule]", preview).textContent = d.rrule || "";
            $("[data-sched-rrule-line]", preview).hidden = !d.rrule;
          })
          .catch(function () { /* the words stay as they were; the form still works */ });
      }, 150);
    }

    // "All zones" and single zones exclude each other.
    var all = $("[data-zone-all]", form);
    $$("[data-zone]", form).forEach(function (box) {
      box.addEventListener("change", function () { if (box.checked && all) all.checked = false; });
    });
    if (all) {
      all.addEventListener("change", function () {
        if (all.checked) $$("[data-zone]", form).forEach(function (box) { box.checked = false; });
      });
    }

    // The category "emergency" suggests the priority, and the other way round (the
    // categories are radio buttons: setting the list's value checks one).
    var category = form.elements.category;
    form.addEventListener("change", function (ev) {
      var target = ev.target;
      if (target.name === "priority" && target.value === "emergency") {
        // An emergency plays at once: no time, no recurrence.
        if (category) category.value = "emergency";
        var now = $("input[name=when][value=now]", form);
        if (now) now.checked = true;
      }
      if (target.name === "category" && target.value === "emergency") {
        var p = $("input[name=priority][value=emergency]", form);
        if (p) p.checked = true;
      }
      showPanels();
      describe();
    });
    form.addEventListener("input", function (ev) {
      if (["date", "time", "count", "until", "rrule_custom"].indexOf(ev.target.name) >= 0) describe();
    });

    // Characters left in the text.
    var text = form.elements.text;
    var counter = $("[data-count-for=text]", form);
    function count() { if (counter && text) counter.textContent = t("sjs.chars", { n: text.value.length }); }
    if (text) text.addEventListener("input", count);

    showPanels();
    describe();
    count();
    var problem = document.getElementById("form-error");
    if (problem) problem.focus();

    listen(form);
    recorder(form);
    upload(form);
  }

  // -- "listen": the text as it will sound ------------------------------------------
  function listen(form) {
    var button = $("[data-listen]", form);
    var audio = $("[data-listen-audio]", form);
    var status = $("[data-listen-status]", form);
    var length = $("[data-listen-length]", form);
    if (!button || !audio) return;
    var url = null;
    // What the line under the button says follows the player: ready, reading, read.
    audio.addEventListener("playing", function () { say(status, t("sjs.listen_playing"), "ok"); });
    audio.addEventListener("ended", function () { say(status, t("sjs.listen_again"), "ok"); });
    button.addEventListener("click", function () {
      var text = form.elements.text.value.trim();
      if (!text) { say(status, t("sjs.listen_empty"), "bad"); return; }
      button.disabled = true;
      say(status, t("sjs.listen_wait"));
      var el = form.elements;
      var repeat = el.repeat ? parseInt(el.repeat.value, 10) || 1 : 1;
      var body = {
        text: text.slice(0, 2000),
        voice: (el.voice && el.voice.value) || null,
        rate: el.rate && el.rate.value ? parseFloat(el.rate.value) : null,
        repeat: repeat
      };
      if (length) length.hidden = true;
      apiPost("/api/tts/preview", body, true)
        .then(function (r) {
          var seconds = parseFloat(r.headers.get("X-Duration-S") || "");
          return r.blob().then(function (blob) { return { blob: blob, seconds: seconds }; });
        })
        .then(function (got) {
          var blob = got.blob;
          // How long it is, said as on the loudspeakers: the head hears the repeats counted.
          if (length && isFinite(got.seconds)) {
            var lang = document.documentElement.lang || "vi";
            var shown = got.seconds.toLocaleString(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
            length.textContent = t("sjs.listen_length", { seconds: shown, n: repeat });
            length.setAttribute("data-seconds", String(got.seconds));
            length.hidden = false;
          }
          if (url) URL.revokeObjectURL(url);
          url = URL.createObjectURL(blob);
          audio.src = url;
          audio.hidden = false;
          say(status, t("sjs.listen_ready"), "ok");
          var playing = audio.play();
          if (playing && playing.catch) playing.catch(function () { /* autoplay refused: ▶ is there */ });
        })
        .catch(function (e) { say(status, t("sjs.failed", { reason: e.message }), "bad"); })
        .then(function () { button.disabled = false; });
    });
  }

  // -- recordings and files: uploaded to POST /api/audio --------------------------------
  function sendAudio(form, blob, name) {
    var hidden = $("[data-audio-id]", form);
    var mb = page.max_upload_mb || 25;
    if (blob.size > mb * 1024 * 1024) {
      say(audioStatus, t("sjs.too_big", { mb: mb }), "bad");
      return Promise.resolve(null);
    }
    say(audioStatus, t("sjs.uploading"));
    var body = new FormData();
    body.append("file", blob, name);
    return apiPost("/api/audio", body, false)
      .then(function (r) { return r.json(); })
      .then(function (d) {
        hidden.value = d.id;
        say(audioStatus, t("sjs.uploaded", { duration: clock(d.duration_s) }), "ok");
        audioStatus.setAttribute("data-duration", String(d.duration_s));
        return d;
      })
      .catch(function (e) {
        hidden.value = "";
        say(audioStatus, t("sjs.failed", { reason: e.message }), "bad");
        return null;
      });
  }

  function recorder(form) {
    var start = $("[data-rec-start]", form);
    if (!start) return;
    var stop = $("[data-rec-stop]", form);
    var timeEl = $("[data-rec-time]", form);
    var audio = $("[data-rec-audio]", form);
    var use = $("[data-rec-upload]", form);
    audioStatus = $("[data-audio-status]", form);
    var rec = null, chunks = [], blob = null, url = null, ticker = null, began = 0;
    var limit = page.max_record_s || 600;

    function supported() {
      return window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
    }
    function mimeType() {
      var types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
      for (var i = 0; i < types.length; i += 1) {
        if (window.MediaRecorder.isTypeSupported && window.MediaRecorder.isTypeSupported(types[i])) return types[i];
      }
      return "";
    }

    start.addEventListener("click", function () {
      if (!supported()) { say(audioStatus, t("sjs.rec_unsupported"), "bad"); return; }
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
        var type = mimeType();
        rec = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
        chunks = [];
        rec.addEventListener("dataavailable", function (ev) { if (ev.data && ev.data.size) chunks.push(ev.data); });
        rec.addEventListener("stop", function () {
          stream.getTracks().forEach(function (track) { track.stop(); });
          window.clearInterval(ticker);
          timeEl.classList.remove("is-live");
          blob = new Blob(chunks, { type: rec.mimeType || type || "audio/webm" });
          if (url) URL.revokeObjectURL(url);
          url = URL.createObjectURL(blob);
          audio.src = url;
          audio.hidden = false;
          use.hidden = false;
          start.hidden = false;
          $("[data-rec-label]", start).textContent = t("sjs.rec_again");
          stop.hidden = true;
          say(audioStatus, t("sjs.recorded"));
        });
        rec.start(250);
        began = Date.now();
        start.hidden = true;
        stop.hidden = false;
        use.hidden = true;
        audio.hidden = true;
        $("[data-audio-id]", form).value = "";
        timeEl.classList.add("is-live");
        timeEl.textContent = "0:00";
        say(audioStatus, t("sjs.recording"));
        ticker = window.setInterval(function () {
          var s = (Date.now() - began) / 1000;
          timeEl.textContent = clock(s);
          if (s >= limit && rec && rec.state === "recording") rec.stop();
        }, 250);
        stop.focus();
      }).catch(function (e) {
        say(audioStatus, t("sjs.rec_denied", { reason: e.message || e.name }), "bad");
      });
    });
    stop.addEventListener("click", function () { if (rec && rec.state === "recording") rec.stop(); });
    use.addEventListener("click", function () {
      if (!blob) return;
      use.disabled = true;
      var ext = /ogg/.test(blob.type) ? "ogg" : (/mp4/.test(blob.type) ? "m4a" : "webm");
      sendAudio(form, blob, "ghi-am." + ext).then(function (d) {
        use.disabled = false;
        if (d) use.hidden = true;
      });
    });
  }

  function upload(form) {
    var input = $("[data-upload]", form);
    if (!input) return;
    var audio = $("[data-upload-audio]", form);
    audioStatus = audioStatus || $("[data-audio-status]", form);
    var url = null;
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) return;
      if (url) URL.revokeObjectURL(url);
      url = URL.createObjectURL(file);
      audio.src = url;
      audio.hidden = false;
      sendAudio(form, file, file.name);
    });
  }

  // -- live lists: the next broadcasts follow the hub ------------------------------------
  var fragments = $$("[data-fragment]");
  if (fragments.length && window.LangsoLive) {
    var timer = null;
    var load = function () {
      fragments.forEach(function (list) {
        fetch(list.getAttribute("data-fragment"), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null) return;
            if (list.innerHTML.trim() !== html.trim()) list.innerHTML = html;
            var empty = list.parentNode.querySelector("[data-fragment-empty]");
            if (empty) empty.hidden = list.children.length > 0;
          })
          .catch(function () { /* the next event tries again */ });
      });
    };
    var refresh = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(load, 250);
    };
    ["announcement", "broadcast", "playout"].forEach(function (kind) {
      window.LangsoLive.on(kind, refresh);
    });
  }

  // -- the dashboard's on-air card: what it says is true now ------------------------------
  // playing (red, with stop); stopped or failed (a line, never red); starting (an emergency
  // just sent); idle. app.js shows and hides the red card by the playout's state; this runs
  // after it (scripts run in order) and knows more: a stop the playout only ends after the
  // amplifier's tail, and why the last broadcast ended (the stream's "broadcast" event).
  var air = $("[data-air]");
  if (air && window.LangsoLive) {
    var info = page.air || { state: "idle" };
    var titles = {};
    if (info.id && info.title) titles[info.id] = info.title;
    var line = $("[data-air-line]", air);
    var card = $("[data-on-air]", air);
    var quiet = $("[data-on-air-quiet]", air);
    var bodyEl = $("[data-air-text]", air);
    var said = bodyEl ? bodyEl.textContent : "";  // the line's text after its heading
    var hm = function (iso) {
      var d = iso ? new Date(iso) : new Date();
      try {
        return d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: page.tz });
      } catch (e) {
        return d.toTimeString().slice(0, 5);
      }
    };
    var show = function (state, text) {
      said = text || "";
      air.setAttribute("data-air", state);
      if (card) card.hidden = state !== "playing";
      if (quiet) quiet.hidden = state === "playing";
      if (!line) return;
      line.hidden = ["stopped", "failed", "starting"].indexOf(state) < 0;
      line.className = "air-line air-line--" + state;
      line.textContent = "";
      if (state === "stopped" || state === "failed") {
        var head = document.createElement("strong");
        head.textContent = t("dash.air." + state) + " ";
        line.appendChild(head);
      }
      line.appendChild(document.createTextNode(text || ""));
    };
    // A notice from before (sent, ended) says what was done, not what is: it goes once the
    // card moves on.
    var notice = $(".notice", air);
    var moved = function () { if (notice) notice.hidden = true; };
    window.LangsoLive.on("playout", function (p) {
      if (!p) return;
      if (p.state === "playing") {
        titles[p.announcement_id] = p.title || p.announcement_id;
        if (info.state === "stopped" && info.id === p.announcement_id && info.started_at === p.started_at) {
          show("stopped", said);  // silent already: the playout is in the amplifier's tail
          return;
        }
        if (info.state !== "playing" || info.id !== p.announcement_id) moved();
        info = { state: "playing", id: p.announcement_id, started_at: p.started_at };
        var title = $("[data-on-air-title]", air);
        if (title) title.textContent = p.title || p.announcement_id || "";
        show("playing");
      } else if (info.state === "playing" || info.state === "starting") {
        // Idle: a "broadcast" event said (just before) how it ended, if it was cut.
        info = { state: "idle" };
        show("idle");
      } else {
        show(info.state, said);  // app.js hid the card already; the line stays as it is
      }
    });
    window.LangsoLive.on("broadcast", function (b) {
      if (!b) return;
      var title = titles[b.announcement_id] || b.announcement_id;
      var at = hm(b.ended_at || b.started_at || b.scheduled_for);
      var detail = b.detail || "";
      if (b.status === "cancelled" && detail.indexOf("stopped by") === 0) {
        moved();
        info = { state: "stopped", id: b.announcement_id };
        var by = detail.replace("stopped by ", "").replace("user:", "");
        show("stopped", t("dash.air.stopped_what", { title: title, time: at, name: by }));
      } else if (b.status === "failed") {
        moved();
        info = { state: "failed", id: b.announcement_id };
        show("failed", t("dash.air.failed_what", { title: title, time: at, reason: detail }));
      } else if (b.status === "played" && info.state !== "playing") {
        info = { state: "idle" };
        show("idle");
      }
    });
  }

  // -- "end the emergency": the text field follows the choice -----------------------------
  $$("form.emerg-form").forEach(function (endForm) {
    var area = endForm.elements.text;
    var allClear = area ? area.value : "";
    endForm.addEventListener("change", function (ev) {
      if (ev.target.name !== "follow" || !area) return;
      var kind = ev.target.value;
      area.disabled = kind === "none";
      if (kind === "correction" && area.value === allClear) area.value = "";
      if (kind === "all_clear" && !area.value.trim()) area.value = allClear;
    });
  });
})();
