// Count a code's remaining seconds down in place; at 0, show the "expired" note.
// The server's page already says how long is left, so the page works without this file.
// Markup: <p data-countdown data-expired-note="ID" data-expired-target="ID"> holding
// <span id="countdown">SECONDS</span>. It starts again after refresh.js swaps content in.
(function () {
  "use strict";
  var timer = null;

  function start() {
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    var out = document.getElementById("countdown");
    var box = out && out.closest("[data-countdown]");
    if (!box) { return; }
    var left = parseInt(out.textContent, 10);
    if (isNaN(left)) { return; }
    var note = document.getElementById(box.getAttribute("data-expired-note") || "");
    var target = document.getElementById(box.getAttribute("data-expired-target") || "");
    // Count from this browser's clock: the server's clock may differ from it.
    var end = Date.now() + left * 1000;

    function tick() {
      var remaining = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      out.textContent = String(remaining);
      if (remaining > 0) {
        timer = window.setTimeout(tick, 1000);
        return;
      }
      timer = null;
      box.classList.add("expired");
      box.hidden = true;
      if (target) { target.classList.add("expired"); }
      if (note) { note.hidden = false; }
    }
    tick();
  }

  start();
  document.addEventListener("licserver:replaced", start);
})();
