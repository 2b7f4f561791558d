/* Supervisor wallboard: replaces the board with a fresh server-rendered fragment every
 * data-refresh seconds (a passive request: it does not keep the session alive). A failed
 * refresh keeps the last board and shows the "connection lost" notice; a 401 (session over)
 * reloads the page, which leads to the sign-in page.
 */
(function () {
  "use strict";
  var root = document.getElementById("wallboard");
  if (!root || !window.AK) { return; }
  var target = document.getElementById("wallboard-board");
  var offline = document.getElementById("wallboard-offline");
  var every = Math.max(2, parseInt(root.dataset.refresh, 10) || 5) * 1000;
  var busy = false;

  function setOffline(flag) {
    root.dataset.stale = flag ? "1" : "0";
    if (offline) { offline.hidden = !flag; }
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    window.AK.get(root.dataset.board)
      .then(function (r) {
        if (r.status === 401) { window.AK.signedOut(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (typeof html === "string") {
          target.innerHTML = html;
          root.dataset.refreshed = String(Date.now());
          setOffline(false);
        } else {
          setOffline(true);
        }
      })
      .catch(function () { setOffline(true); })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { refresh(); }
  });
})();
