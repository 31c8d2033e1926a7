/* Làng Số — the residents' pages. They work without this file; with it: "on air now"
   live over /api/stream, one player at a time, the feedback form's character count,
   the poster's print button. Words come from the page data (the server's catalogue). */
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

  // -- one player at a time: starting one pauses the others ------------------------------
  document.addEventListener("play", function (ev) {
    document.querySelectorAll("audio").forEach(function (audio) {
      if (audio !== ev.target) audio.pause();
    });
  }, true);

  // -- "▶ Nghe · 0:42" until the first tap: the player's own 0:00 / 0:00 says nothing ------
  document.querySelectorAll("[data-player-box]").forEach(function (box) {
    var button = box.querySelector("[data-play]");
    var audio = box.querySelector("[data-player]");
    if (!button || !audio) return;
    audio.hidden = true;
    button.hidden = false;
    button.addEventListener("click", function () {
      button.remove();
      audio.hidden = false;
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* ▶ is there */ });
      audio.focus();
    });
  });

  // -- "copy the address" on /theo-doi (where the page may use the clipboard) -------------
  var copied = document.querySelector("[data-copied]");
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        if (copied) copied.hidden = false;
      });
    });
  });

  // -- the poster's print button (hidden where it cannot work) ---------------------------
  var printButton = document.querySelector("[data-print]");
  if (printButton && typeof window.print === "function") {
    printButton.hidden = false;
    printButton.addEventListener("click", function () { window.print(); });
  }

  // -- characters left in the feedback form ---------------------------------------------
  document.querySelectorAll("[data-counter-for]").forEach(function (out) {
    var field = document.getElementById(out.getAttribute("data-counter-for"));
    if (!field) return;
    var max = parseInt(field.getAttribute("maxlength") || "0", 10);
    var update = function () {
      var left = Math.max(0, max - field.value.length);
      out.textContent = t("pub.js.chars_left", { n: left });
      out.classList.toggle("is-low", left < 100);
    };
    field.addEventListener("input", update);
    update();
  });

  // -- on air now, live ---------------------------------------------------------------
  var card = document.querySelector("[data-onair]");
  if (!card) return;
  var now = card.querySelector("[data-onair-now]");
  var quiet = card.querySelector("[data-onair-quiet]");
  var link = card.querySelector("[data-onair-link]");
  var flag = card.querySelector("[data-onair-emergency]");
  var fresh = card.querySelector("[data-fresh]");

  function onPlayout(p) {
    if (!p) return;
    var playing = p.state === "playing";
    var emergency = playing && p.priority === "emergency";
    if (playing) {
      link.textContent = p.title || p.announcement_id || "";
      link.href = "/a/" + encodeURIComponent(p.announcement_id || "");
    }
    flag.hidden = !emergency;
    card.classList.toggle("onair--emergency", emergency);
    now.hidden = !playing;
    quiet.hidden = playing;
  }

  function onNews() {
    if (fresh) fresh.hidden = false;
  }

  if (!window.LangsoLive) return;
  window.LangsoLive.on("playout", onPlayout);
  window.LangsoLive.on("announcement", onNews);
  window.LangsoLive.on("broadcast", function (b) {
    if (b && b.status === "played") onNews();
  });
})();
