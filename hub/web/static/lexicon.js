/* Làng Số — the pronunciation page (/app/lexicon). It works without this script (listen
   answers with the audio file, the import posts the form); with it:
   - "listen" plays in the page: the form's word, saying (typed, not yet saved) and
     sentence go to POST /api/lexicon/listen and the audio plays in the page's player;
   - the import sends the file to POST /api/lexicon/import (larger than a staff form may
     be) and says the refusal, with its line, under the file field.
   Writes carry the session cookie and the X-CSRF-Token header; words come from the page
   data (the server's catalogue). */
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

  function reasonOf(response) {
    return response.text().then(function (body) {
      try { return JSON.parse(body).detail || body; } catch (e) { return body || String(response.status); }
    });
  }

  function post(url, body, json) {
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

  // -- listen: one player for the page ------------------------------------------------
  var box = $("[data-lex-box]");
  var player = $("[data-lex-player]");
  var status = $("[data-lex-status]");
  var url = null;

  function say(text, state) {
    status.textContent = text || "";
    status.classList.toggle("is-ok", state === "ok");
    status.classList.toggle("is-bad", state === "bad");
  }

  function field(form, name) {
    var el = form.elements[name];
    var value = el ? String(el.value || "").trim() : "";
    return value || null;
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("[data-lex-listen]") : null;
    if (!button || !player) return;
    ev.preventDefault();
    var form = button.form;
    var body = { text: field(form, "text"), word: field(form, "word"), say: field(form, "say") };
    box.hidden = false;
    button.disabled = true;
    say(t("ljs.listen_wait"));
    post("/api/lexicon/listen", body, true)
      .then(function (r) { return r.blob(); })
      .then(function (blob) {
        if (url) URL.revokeObjectURL(url);
        url = URL.createObjectURL(blob);
        player.src = url;
        player.setAttribute("data-played", body.word || body.text || "");
        say(t("ljs.listen_ready"), "ok");
        var playing = player.play();
        if (playing && playing.catch) playing.catch(function () { /* autoplay refused: ▶ is there */ });
      })
      .catch(function (e) { say(t("ljs.failed", { reason: e.message }), "bad"); })
      .then(function () { button.disabled = false; });
  });

  // -- import through the API (no staff-form size cap) ----------------------------------
  var importForm = $("[data-lex-import]");
  if (importForm && window.FormData) {
    importForm.addEventListener("submit", function (ev) {
      var file = importForm.elements.file.files[0];
      if (!file) return; // the server says "choose a file"
      ev.preventDefault();
      var out = $("[data-lex-import-status]", importForm);
      out.hidden = false;
      out.textContent = t("ljs.importing");
      var body = new FormData();
      body.append("file", file, file.name);
      var replace = importForm.elements.replace.checked ? "true" : "false";
      post("/api/lexicon/import?replace=" + replace, body, false)
        .then(function (r) { return r.json(); })
        .then(function (d) {
          var q = ["added", "changed", "removed", "unchanged"].map(function (k) { return k + "=" + d[k]; });
          window.location.assign("/app/lexicon?ok=imported&" + q.join("&"));
        })
        .catch(function (e) { out.textContent = t("ljs.failed", { reason: e.message }); });
    });
  }
})();
