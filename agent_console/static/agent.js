/* Agent screen: screen pop over Server-Sent Events, queue state polling.
 * The stream sends `screen_pop` events (id = Redis stream id); on each, the call panel is
 * fetched from the server (which audits the opening of the citizen record) and shown.
 */
(function () {
  "use strict";
  var root = document.getElementById("agent-screen");
  if (!root || !window.EventSource) { return; }
  var panel = document.getElementById("call-panel");
  var live = document.getElementById("live-status");
  var stateEl = document.getElementById("agent-state");
  var reasonEl = document.getElementById("agent-reason");
  var callUrl = root.dataset.call;
  var shown = null;

  function showCall(callId) {
    if (!callId || callId === shown) { return; }
    shown = callId;
    window.AK.get(callUrl.replace("CALLID", encodeURIComponent(callId)))
      .then(function (r) {
        if (r.status === 401) { window.AK.signedOut(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) { shown = null; return; }
        panel.innerHTML = html;
        document.title = "☎ " + document.title.replace(/^☎ /, "");
        var first = panel.querySelector("#tf-desc");
        if (first) { first.focus(); }
        if (live) { live.textContent = live.dataset.onCall || ""; }
        root.dataset.popped = callId;
      });
  }

  function connect() {
    var since = root.dataset.since || "";
    var source = new EventSource(root.dataset.events + (since ? "?since=" + encodeURIComponent(since) : ""));
    source.addEventListener("screen_pop", function (event) {
      root.dataset.since = event.lastEventId || root.dataset.since;
      try {
        var message = JSON.parse(event.data);
        showCall(message.call_id);
      } catch (e) { /* malformed message: ignore */ }
    });
    source.addEventListener("open", function () { root.dataset.connected = "1"; });
    source.addEventListener("error", function () {
      root.dataset.connected = "0";
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (signed out or expired): check, then reload or retry.
        window.AK.get(root.dataset.state).then(function (r) {
          if (r.status === 401) { window.AK.signedOut(); } else { window.setTimeout(connect, 3000); }
        });
      }
    });
  }

  function poll() {
    window.AK.get(root.dataset.state)
      .then(function (r) {
        if (r.status === 401) { window.AK.signedOut(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (!body || !stateEl) { return; }
        if (stateEl.dataset.code !== body.state) {
          stateEl.dataset.code = body.state;
          stateEl.className = "state state-" + body.state;
          var names = JSON.parse(root.dataset.stateNames || "{}");
          stateEl.textContent = names[body.state] || body.state;
          if (reasonEl) { reasonEl.textContent = body.state === "paused" ? body.reason : ""; }
        }
      })
      .catch(function () { /* network hiccup: next poll */ });
  }

  connect();
  window.setInterval(poll, 10000);
})();
