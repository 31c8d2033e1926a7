/* Làng Số — the rule's edit form (/app/rules/{id}). The form works without this script
   (the server fills each preview and checks every field); with it:
   - each text's preview follows what is typed: the placeholders filled as the hub fills
     them for the device named above it (the contexts come from the server, in the form's
     data-contexts; the loudspeakers' texts use the device's spoken name);
   - "all zones" and single zones exclude each other as the server reads them.
   Loaded on this page only. */
(function () {
  "use strict";

  var form = document.querySelector("[data-rule-form]");
  if (!form) return;
  var contexts = {};
  try {
    contexts = JSON.parse(form.getAttribute("data-contexts") || "{}");
  } catch (e) {
    return;
  }

  // str.format's braces, named fields only (hub/automation/templates.py): "{{" and "}}" are
  // a brace itself; a placeholder the hub does not know is left as typed (the save says why);
  // a brace that does not match gives no preview.
  function fill(text, ctx) {
    var out = "";
    var i = 0;
    while (i < text.length) {
      var c = text.charAt(i);
      if (c === "{" && text.charAt(i + 1) === "{") { out += "{"; i += 2; continue; }
      if (c === "}" && text.charAt(i + 1) === "}") { out += "}"; i += 2; continue; }
      if (c === "}") return null;
      if (c === "{") {
        var end = text.indexOf("}", i + 1);
        if (end < 0) return null;
        var name = text.slice(i + 1, end);
        out += Object.prototype.hasOwnProperty.call(ctx, name) ? ctx[name] : "{" + name + "}";
        i = end + 1;
        continue;
      }
      out += c;
      i += 1;
    }
    return out;
  }

  function preview(area) {
    var target = document.getElementById(area.getAttribute("data-preview-to"));
    if (!target) return;
    var box = target.closest("[data-preview-box]");
    var text = fill(area.value.trim(), contexts[area.getAttribute("data-tpl")] || {});
    target.textContent = text || "";
    if (box) box.hidden = !text;
  }

  Array.prototype.forEach.call(form.querySelectorAll("textarea[data-tpl]"), function (area) {
    area.addEventListener("input", function () { preview(area); });
  });

  Array.prototype.forEach.call(form.querySelectorAll("[data-zones]"), function (group) {
    var all = group.querySelector("[data-zone-all]");
    var each = Array.prototype.slice.call(group.querySelectorAll("[data-zone]"));
    if (!all) return;
    all.addEventListener("change", function () {
      if (all.checked) each.forEach(function (box) { box.checked = false; });
    });
    each.forEach(function (box) {
      box.addEventListener("change", function () {
        if (box.checked) all.checked = false;
      });
    });
  });
})();
