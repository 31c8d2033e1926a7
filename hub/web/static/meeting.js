/* Làng Số — the compose page's meeting invitation hint. The page works without this
   script (the hint's button posts the form and the server makes it a meeting); with it:
   as the head types, the hub says whether the title and text read as an invitation
   (GET /app/compose/meeting-hint: the words and what it read of the date, time and
   place); the button then makes it a meeting in one tap, fills in what was read and
   shows the meeting's fields. The hub reads the text: the page reads nothing itself. */
(function () {
  "use strict";

  var form = document.querySelector("form[data-compose]");
  var box = form && form.querySelector("[data-meeting-hint]");
  if (!box) return;
  var take = box.querySelector("[data-meeting-take]");
  var said = box.querySelector("[data-meeting-hint-text]");
  var pending = null;
  var asked = 0;

  function category() {
    var checked = form.querySelector("input[name=category]:checked");
    return checked ? checked.value : "notice";
  }

  function ask() {
    window.clearTimeout(pending);
    pending = window.setTimeout(function () {
      var q = new URLSearchParams();
      q.append("title", form.elements.title.value);
      q.append("text", (form.elements.text.value || "").slice(0, 2000));
      q.append("category", category());
      var mine = ++asked;
      fetch("/app/compose/meeting-hint?" + q.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d || mine !== asked) return;  // an older answer, overtaken
          said.textContent = d.text || "";
          take.setAttribute("data-date", d.date || "");
          take.setAttribute("data-time", d.time || "");
          take.setAttribute("data-place", d.place || "");
          box.hidden = !d.show;
        })
        .catch(function () { /* no hint: the category stays the head's to choose */ });
    }, 300);
  }

  function fill(name, value) {
    var field = form.elements[name];
    if (field && !field.value && value) field.value = value;
  }

  take.addEventListener("click", function (ev) {
    ev.preventDefault();
    var meeting = form.querySelector("input[name=category][value=meeting]");
    meeting.checked = true;
    fill("meeting_date", take.getAttribute("data-date"));
    fill("meeting_time", take.getAttribute("data-time"));
    fill("meeting_place", take.getAttribute("data-place"));
    box.hidden = true;
    // The other scripts follow the form's changes (panels, the schedule in words).
    meeting.dispatchEvent(new Event("change", { bubbles: true }));
    var next = ["meeting_date", "meeting_time", "meeting_place"].filter(function (n) {
      return !form.elements[n].value;
    })[0];
    var target = form.elements[next || "meeting_place"];
    target.scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
  });

  form.addEventListener("input", function (ev) {
    if (ev.target.name === "title" || ev.target.name === "text") ask();
  });
  form.addEventListener("change", function (ev) {
    if (ev.target.name === "category") ask();
  });
})();
