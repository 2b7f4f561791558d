/* Açık Kapı console: shared behaviour (no framework, no inline code: CSP script-src 'self').
 * - AK.post(url, data): fetch with the CSRF token header (X-CSRFToken) from <meta name=csrf-token>.
 * - Keep-alive: user activity (keys, clicks) tells the server at most once a minute.
 * - Reason dialog: buttons with data-reason-action ask for a reason, POST it, and show the
 *   answer (TC number, or an audio player for a recording). Works on content inserted later.
 */
(function () {
  "use strict";
  var AK = (window.AK = window.AK || {});

  AK.csrf = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };

  AK.post = function (url, data) {
    var body = new URLSearchParams();
    Object.keys(data || {}).forEach(function (k) { body.append(k, data[k]); });
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": AK.csrf(),
        "X-Requested-With": "fetch",
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded"
      },
      body: body
    });
  };

  AK.get = function (url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    });
  };

  AK.signedOut = function () { window.location.reload(); };

  /* --- keep-alive on activity ------------------------------------------------------ */
  var lastPing = Date.now();
  function activity() {
    if (Date.now() - lastPing < 60000) { return; }
    lastPing = Date.now();
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (!meta || !document.body.dataset) { return; }
    AK.post("/keepalive", {}).then(function (r) { if (r.status === 401) { AK.signedOut(); } });
  }
  ["keydown", "click", "touchstart"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true });
  });

  /* --- reason dialog (TC reveal, recording playback) --------------------------------- */
  function askReason(button) {
    var dialog = document.getElementById("reason-dialog");
    if (!dialog || typeof dialog.showModal !== "function") { return; }
    var text = document.getElementById("reason-text");
    var error = document.getElementById("reason-error");
    text.value = "";
    error.hidden = true;
    dialog.returnValue = "";
    dialog.showModal();
    text.focus();
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue !== "ok") { button.focus(); return; }
      AK.post(button.dataset.reasonAction, { reason: text.value })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) {
            window.alert(res.body.error || "Hata");
            return;
          }
          var target = document.getElementById(button.dataset.target);
          if (button.dataset.reasonKind === "tc" && target) {
            target.textContent = res.body.tc_number;
            target.classList.add("revealed");
            button.remove();
          } else if (button.dataset.reasonKind === "recording" && target) {
            var audio = document.createElement("audio");
            audio.controls = true;
            audio.preload = "auto";
            audio.src = res.body.url;
            target.replaceChildren(audio);
            audio.play().catch(function () { /* autoplay may be refused: controls remain */ });
            button.remove();
          }
        });
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-reason-action]");
    if (!button) { return; }
    event.preventDefault();
    askReason(button);
  });
})();
