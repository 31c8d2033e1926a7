/* Làng Số — the little JavaScript of the web page. Pages work without it; with it:
   live updates over /api/stream (device status, alerts), relative times that keep
   current, the device search filtering as you type, a confirmation before disabling
   an account. Words come from the page data (the server's catalogue), never from here. */
(function () {
  "use strict";

  var dataEl = document.getElementById("page-data");
  var page = dataEl ? JSON.parse(dataEl.textContent) : {};
  var T = page.t || {};
  var STATUS_ICONS = { online: "\u2713", degraded: "!", offline: "\u2715", unknown: "?" };
  var SEVERITY_ICONS = { critical: "\u25B2", warning: "\u25CF" };

  function t(key, values) {
    var s = T[key] || key;
    if (values) {
      Object.keys(values).forEach(function (k) { s = s.split("{" + k + "}").join(String(values[k])); });
    }
    return s;
  }

  // The hub's clock, not the phone's: a phone's clock may be off, and tests run on a fake one.
  var offset = page.now ? page.now * 1000 - Date.now() : 0;
  function hubNow() { return Date.now() + offset; }

  function ago(iso) {
    if (!iso) return t("ago.never");
    var s = Math.max(0, (hubNow() - Date.parse(iso)) / 1000);
    if (s < 60) return t("ago.now");
    if (s < 3600) return t("ago.minutes", { n: Math.floor(s / 60) });
    if (s < 86400) return t("ago.hours", { n: Math.floor(s / 3600) });
    return t("ago.days", { n: Math.floor(s / 86400) });
  }

  function refreshTimes() {
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var tpl = el.getAttribute("data-tpl") || "{ago}";
      el.textContent = tpl.split("{ago}").join(ago(el.getAttribute("datetime")));
    });
  }
  window.setInterval(refreshTimes, 30000);

  function parse(ev) {
    try { return JSON.parse(ev.data); } catch (e) { return null; }
  }

  // -- one live stream per page: app.js, public.js and staff.js all listen to it ---------
  // From the mark the page was rendered at: nothing that happened since is missed. The
  // browser reconnects by itself (the hub ends each stream after a while) with the id of
  // the last event it got, and the hub sends what came meanwhile. Opened at the first
  // listener, so a page that shows nothing live opens nothing.
  var source = null;
  var pausedTimer = null;

  function live(on) {
    document.querySelectorAll("[data-live-indicator]").forEach(function (indicator) {
      indicator.hidden = false;
      indicator.classList.toggle("is-off", !on);
      var text = indicator.querySelector("[data-live-text]");
      if (text) text.textContent = t(on ? "live.on" : "live.off");
    });
  }

  function stream() {
    if (source || !window.EventSource) return source;
    var url = "/api/stream" + (page.mark ? "?since=" + encodeURIComponent(page.mark) : "");
    source = new EventSource(url);
    source.addEventListener("heartbeat", function (ev) {
      var d = parse(ev);
      if (d && d.now) offset = Date.parse(d.now) - Date.now();
      window.clearTimeout(pausedTimer);
      pausedTimer = null;
      live(true);
    });
    // The hub cannot tell what was missed (it restarted, or the break was long): read afresh.
    source.addEventListener("reset", function () { window.location.reload(); });
    source.addEventListener("error", function () {
      // A planned reconnect takes a couple of seconds; say "paused" only if it lasts.
      if (pausedTimer === null) pausedTimer = window.setTimeout(function () { live(false); }, 6000);
    });
    window.addEventListener("pagehide", function () { source.close(); });
    return source;
  }

  // on(kind, fn): fn gets each event's data (parsed JSON); false when the browser has no
  // EventSource (the page then stays as rendered).
  window.LangsoLive = {
    on: function (kind, fn) {
      var s = stream();
      if (!s) return false;
      s.addEventListener(kind, function (ev) { fn(parse(ev)); });
      return true;
    }
  };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // -- forms that ask first -------------------------------------------------------------
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) ev.preventDefault();
  });

  // -- the device search, as you type -------------------------------------------------
  var search = document.querySelector("input[data-filter]");
  if (search) {
    var selector = search.getAttribute("data-filter");
    var none = document.querySelector("[data-filter-empty]");
    var filter = function () {
      var q = search.value.trim().toLowerCase();
      var shown = 0;
      document.querySelectorAll(selector).forEach(function (item) {
        var hit = !q || (item.getAttribute("data-search") || "").indexOf(q) >= 0;
        item.hidden = !hit;
        if (hit) shown += 1;
      });
      if (none) none.hidden = shown > 0;
    };
    search.addEventListener("input", filter);
  }

  // -- live updates ---------------------------------------------------------------------
  if (!document.body.hasAttribute("data-live") || !window.EventSource) return;

  var statuses = page.devices || {};
  var openAlerts = {};
  (page.open_alerts || []).forEach(function (id) { openAlerts[id] = true; });

  function setBadge(badge, status) {
    badge.className = badge.className.replace(/badge--(online|degraded|offline|unknown)/, "badge--" + status);
    var icon = badge.querySelector(".badge-icon");
    var text = badge.querySelector(".badge-text");
    if (icon) icon.textContent = STATUS_ICONS[status] || "?";
    if (text) text.textContent = t("status." + status);
  }

  function recount() {
    var counts = { online: 0, degraded: 0, offline: 0, unknown: 0 };
    Object.keys(statuses).forEach(function (id) {
      var s = statuses[id];
      counts[s] = (counts[s] || 0) + 1;
    });
    document.querySelectorAll("[data-count]").forEach(function (node) {
      var value = String(counts[node.getAttribute("data-count")] || 0);
      if (node.textContent !== value) {
        node.textContent = value;
        node.classList.remove("changed");
        void node.offsetWidth; // restart the highlight
        node.classList.add("changed");
      }
    });
  }

  function onDevice(d) {
    if (!d || !d.id) return;
    if (page.page === "dashboard" || Object.prototype.hasOwnProperty.call(statuses, d.id)) {
      statuses[d.id] = d.status;
    }
    document.querySelectorAll("[data-status-for]").forEach(function (badge) {
      if (badge.getAttribute("data-status-for") === d.id) setBadge(badge, d.status);
    });
    recount();
  }

  var RULE = /^(.+?)(>=|<=|>|<)(-?[0-9.e+]+)$/;
  function unitOf(metric) {
    var units = [["_bytes", "kB/s"], ["_pct", "%"], ["_dbm", "dBm"], ["_cm", "cm"], ["_mm", "mm"], ["_c", "\u00B0C"], ["_v", "V"], ["_s", "s"]];
    for (var i = 0; i < units.length; i += 1) {
      if (metric.slice(-units[i][0].length) === units[i][0]) return units[i][1];
    }
    return "";
  }
  function number(text) {
    var s = String(text).replace("-", "\u2212");
    return page.lang === "vi" ? s.replace(".", ",") : s;
  }
  function alertTitle(a) {
    if (T["alert.rule." + a.rule]) return t("alert.rule." + a.rule);
    var m = RULE.exec(a.rule || "");
    if (!m) return a.message || a.rule;
    var label = T["metric." + m[1]] || m[1].replace(/_/g, " ");
    var op = { ">=": "\u2265", "<=": "\u2264" }[m[2]] || m[2];
    var unit = unitOf(m[1]);
    return t("alert.threshold", { rule: label + " " + op + " " + number(m[3]) + (unit ? "\u00A0" + unit : "") });
  }

  function timeNode(iso, key) {
    var node = el("time");
    node.setAttribute("datetime", iso || "");
    node.setAttribute("data-ago", "");
    node.setAttribute("data-tpl", t(key));
    node.textContent = t(key).split("{ago}").join(ago(iso));
    return node;
  }

  function alertItem(a, withAck) {
    var cleared = a.state === "cleared";
    var li = el("li", "alert alert--" + a.severity + (cleared ? " alert--cleared" : ""));
    li.setAttribute("data-alert-id", a.id);
    var top = el("div", "alert-top");
    var sev = el("span", "sev sev--" + a.severity);
    var icon = el("span", "", SEVERITY_ICONS[a.severity] || "\u25CF");
    icon.setAttribute("aria-hidden", "true");
    sev.appendChild(icon);
    sev.appendChild(document.createTextNode(" " + t("severity." + a.severity)));
    top.appendChild(sev);
    if (a.device_id === "hub") {
      top.appendChild(el("span", "alert-device", t("alert.hub")));
    } else if (a.device_id) {
      var link = el("a", "alert-device", a.device_id);
      link.href = "/app/devices/" + encodeURIComponent(a.device_id);
      top.appendChild(link);
    }
    li.appendChild(top);
    li.appendChild(el("p", "alert-title", alertTitle(a)));
    var meta = el("p", "alert-meta");
    meta.appendChild(cleared ? timeNode(a.cleared_at, "alerts.cleared") : timeNode(a.raised_at, "alerts.raised"));
    li.appendChild(meta);
    if (a.acked_by) {
      li.appendChild(ackedLine(a));
    } else if (withAck && !cleared && page.csrf) {
      var form = el("form", "ack-form");
      form.method = "post";
      form.action = "/app/alerts/" + encodeURIComponent(a.id) + "/ack";
      [["csrf", page.csrf], ["next", "/app/alerts"]].forEach(function (pair) {
        var input = el("input");
        input.type = "hidden";
        input.name = pair[0];
        input.value = pair[1];
        form.appendChild(input);
      });
      var button = el("button", "btn btn--primary", t("alerts.ack"));
      button.type = "submit";
      form.appendChild(button);
      li.appendChild(form);
    }
    return li;
  }

  function ackedLine(a) {
    var p = el("p", "alert-ack");
    var mark = el("span", "", "\u2713");
    mark.setAttribute("aria-hidden", "true");
    p.appendChild(mark);
    p.appendChild(document.createTextNode(" " + t("alerts.acked", { name: a.acked_by, ago: ago(a.acked_at) })));
    return p;
  }

  function findItem(list, id) {
    var items = list.querySelectorAll("[data-alert-id]");
    for (var i = 0; i < items.length; i += 1) {
      if (items[i].getAttribute("data-alert-id") === id) return items[i];
    }
    return null;
  }

  function trim(list) {
    var limit = parseInt(list.getAttribute("data-limit") || "0", 10);
    while (limit && list.children.length > limit) list.removeChild(list.lastElementChild);
  }

  function onAlert(a) {
    if (!a || !a.id) return;
    if (a.state === "cleared") delete openAlerts[a.id];
    else openAlerts[a.id] = true;
    document.querySelectorAll("[data-alert-list]").forEach(function (list) {
      var kind = list.getAttribute("data-alert-list");
      var existing = findItem(list, a.id);
      if (kind === "open") {
        if (a.state === "cleared") {
          if (existing) list.removeChild(existing);
        } else if (existing) {
          if (a.acked_by && !existing.querySelector(".alert-ack")) {
            var form = existing.querySelector("form");
            if (form) existing.removeChild(form);
            existing.appendChild(ackedLine(a));
          }
        } else {
          list.insertBefore(alertItem(a, list.hasAttribute("data-ack")), list.firstChild);
          trim(list);
        }
      } else if (kind === "cleared" && a.state === "cleared" && !existing) {
        list.insertBefore(alertItem(a, false), list.firstChild);
        trim(list);
      }
    });
    var empty = document.querySelector("[data-alert-empty]");
    var openList = document.querySelector('[data-alert-list="open"]');
    if (empty && openList) empty.hidden = openList.children.length > 0;
    var clearedEmpty = document.querySelector("[data-cleared-empty]");
    var clearedList = document.querySelector('[data-alert-list="cleared"]');
    if (clearedEmpty && clearedList) clearedEmpty.hidden = clearedList.children.length > 0;
    var n = Object.keys(openAlerts).length;
    document.querySelectorAll("[data-open-alerts]").forEach(function (badge) {
      badge.textContent = String(n);
      badge.hidden = n === 0;
    });
  }

  function onPlayout(p) {
    var onAir = document.querySelector("[data-on-air]");
    var quiet = document.querySelector("[data-on-air-quiet]");
    if (!p || !onAir) return;
    var playing = p.state === "playing";
    var title = onAir.querySelector("[data-on-air-title]");
    if (title) title.textContent = playing ? (p.title || p.announcement_id || "") : "";
    onAir.hidden = !playing;
    if (quiet) quiet.hidden = playing;
  }

  window.LangsoLive.on("device", onDevice);
  window.LangsoLive.on("alert", onAlert);
  window.LangsoLive.on("playout", onPlayout);
})();
