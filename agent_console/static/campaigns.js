/* Campaign pages (issue 6): live progress bars and the new-campaign form.
 * - #campaigns[data-progress-url]: every data-refresh seconds (2) fetch the progress of the
 *   campaigns shown with data-live="1" (running or paused) and redraw their bars and counts.
 *   Polling stops once no campaign on the page is live; a 401 reloads (sign-in page); a
 *   failure keeps the last figures and shows the "connection lost" notice. On a campaign's
 *   own page (data-reload-on-finish) a change of status reloads, so the buttons follow.
 * - #campaign-form: shows only the fields of the chosen target source.
 * No inline code (CSP script-src 'self'); AK comes from console.js.
 */
(function () {
  "use strict";

  function setText(scope, selector, value) {
    scope.querySelectorAll(selector).forEach(function (el) { el.textContent = String(value); });
  }

  function redraw(row, c) {
    var bar = row.querySelector("progress");
    if (bar) {
      bar.max = Math.max(1, c.total);
      bar.value = c.final;
      bar.textContent = c.percent + "%";
    }
    setText(row, '[data-field="percent"]', c.percent);
    setText(row, '[data-field="final"]', c.final);
    setText(row, '[data-field="total"]', c.total);
    setText(row, '[data-field="in_flight"]', c.in_flight);
    setText(row, '[data-field="status_label"]', c.status_label);
    setText(row, '[data-count="attempts"]', c.attempts);
    row.querySelectorAll("[data-count]").forEach(function (el) {
      var parts = el.dataset.count.split(".");
      if (parts.length === 2 && c[parts[0]]) { el.textContent = String(c[parts[0]][parts[1]] || 0); }
    });
    var box = row.querySelector(".campaign-progress");
    var before = box ? box.dataset.status : c.status;
    if (box) { box.dataset.status = c.status; }
    row.dataset.live = c.live ? "1" : "0";
    row.dataset.refreshed = String(Date.now());
    if (before !== c.status && row.dataset.reloadOnFinish === "1") { window.location.reload(); }
  }

  function poll(root) {
    if (!window.AK) { return; }
    var offline = document.getElementById("campaigns-offline");
    var every = Math.max(1, parseInt(root.dataset.refresh, 10) || 2) * 1000;
    var busy = false;
    var timer = null;

    function liveRows() { return root.querySelectorAll('[data-campaign-row][data-live="1"]'); }

    function tick() {
      var rows = liveRows();
      if (!rows.length) { window.clearInterval(timer); return; }
      if (busy || document.hidden) { return; }
      busy = true;
      var query = Array.prototype.map.call(rows, function (r) {
        return "id=" + encodeURIComponent(r.dataset.campaignRow);
      }).join("&");
      window.AK.get(root.dataset.progressUrl + "?" + query)
        .then(function (r) {
          if (r.status === 401) { window.AK.signedOut(); return null; }
          return r.ok ? r.json() : null;
        })
        .then(function (body) {
          if (offline) { offline.hidden = !!body; }
          if (!body) { return; }
          body.campaigns.forEach(function (c) {
            root.querySelectorAll('[data-campaign-row="' + c.id + '"]').forEach(function (row) {
              redraw(row, c);
            });
          });
        })
        .catch(function () { if (offline) { offline.hidden = false; } })
        .then(function () { busy = false; });
    }

    timer = window.setInterval(tick, every);
  }

  function sources(form) {
    var radios = form.querySelectorAll('input[name="source"]');
    function show() {
      var chosen = form.querySelector('input[name="source"]:checked');
      var value = chosen ? chosen.value : "";
      form.querySelectorAll(".source-part").forEach(function (part) {
        part.hidden = part.dataset.source !== value;
      });
    }
    radios.forEach(function (r) { r.addEventListener("change", show); });
    show();
  }

  var root = document.getElementById("campaigns");
  if (root && root.dataset.progressUrl) { poll(root); }
  var form = document.getElementById("campaign-form");
  if (form) { sources(form); }
})();
