/* Làng Số — the dashboard's clock card, shown while the hub's clock is not trusted.
   Without this script the head types the phone's time into the form. With it: the
   hub's time and the phone's (Date.now()) tick side by side in the village's time zone,
   and "set it from my phone" sends the phone's Date.now() at the moment of the press
   (the form's own POST: the page that comes back shows the new state). */
(function () {
  "use strict";

  var card = document.querySelector("[data-clock]");
  if (!card) return;
  var tz = card.getAttribute("data-tz") || "Asia/Ho_Chi_Minh";
  var hubMs = Number(card.getAttribute("data-hub-ms"));
  var shownAt = Date.now();

  function pad(n) { return String(n).padStart(2, "0"); }

  // "19:30:05 01/12/2026" in the village's time, as the server writes the hub's.
  function text(ms) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
    }).formatToParts(new Date(ms)).forEach(function (p) { parts[p.type] = p.value; });
    return parts.hour + ":" + parts.minute + ":" + parts.second + " " +
      parts.day + "/" + parts.month + "/" + parts.year;
  }

  var hubEl = card.querySelector("[data-hub-time]");
  var phoneEl = card.querySelector("[data-phone-time]");
  var phoneLine = card.querySelector("[data-phone]");

  function tick() {
    var now = Date.now();
    // The hub's clock moved on as the phone's did since the page was made.
    if (hubEl && isFinite(hubMs)) hubEl.textContent = text(hubMs + (now - shownAt));
    if (phoneEl) phoneEl.textContent = text(now);
  }
  if (phoneLine) phoneLine.hidden = false;
  tick();
  // Bounded: a dashboard left open for a day stops ticking, it does not run forever.
  var ticks = 0;
  var timer = setInterval(function () {
    tick();
    if (++ticks > 86400) clearInterval(timer);
  }, 1000);

  var form = card.querySelector("[data-clock-form]");
  if (!form) return;
  var manual = form.querySelector("[data-manual]");
  if (manual) manual.hidden = true;
  form.addEventListener("submit", function () {
    form.querySelector("[data-phone-ms]").value = String(Date.now());
  });
})();
