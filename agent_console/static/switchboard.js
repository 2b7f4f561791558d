/* Switchboard screen: keeps the live-call list fresh (passive polling), opens the call that
 * arrives on the operator's line while the note is still empty, and filters the directory
 * as the operator types (Turkish lower-casing: İ/i, I/ı). No inline code (CSP).
 */
(function () {
  "use strict";
  var root = document.getElementById("switchboard");
  if (!root) { return; }
  var list = document.getElementById("live-calls");
  var pbxError = document.getElementById("pbx-error");
  var note = document.getElementById("sb-note");
  var pollUrl = root.dataset.poll;
  var selected = root.dataset.selected || "";

  function open(callId) {
    window.location.assign(root.dataset.selectUrl + "?call=" + encodeURIComponent(callId));
  }

  function poll() {
    window.AK.get(pollUrl)
      .then(function (r) {
        if (r.status === 401) { window.AK.signedOut(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (!body) { return; }
        list.innerHTML = body.html;
        var rows = list.querySelectorAll("tr[data-call-id]");
        rows.forEach(function (row) {
          if (row.dataset.callId === selected) { row.classList.add("selected"); }
        });
        if (pbxError) {
          pbxError.textContent = body.pbx_error || "";
          pbxError.hidden = !body.pbx_error;
        }
        var mine = body.mine || [];
        var pristine = !note || note.value.trim() === "";
        if (mine.length && mine.indexOf(selected) === -1 && pristine) { open(mine[0]); }
      })
      .catch(function () { /* network hiccup: next poll */ });
  }

  var filter = document.getElementById("dir-filter");
  if (filter) {
    var items = document.querySelectorAll("#" + filter.dataset.filterList + " li");
    filter.addEventListener("input", function () {
      var wanted = filter.value.toLocaleLowerCase("tr").trim();
      items.forEach(function (item) {
        var button = item.querySelector("button");
        var text = button ? (button.dataset.name || "") : "";
        item.hidden = wanted !== "" && text.indexOf(wanted) === -1;
      });
    });
    filter.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") { return; }
      event.preventDefault();  // Enter in the filter must not transfer the call
      var first = Array.prototype.find.call(items, function (item) { return !item.hidden; });
      if (first) { first.querySelector("button").focus(); }
    });
  }

  window.setInterval(poll, 3000);
})();
