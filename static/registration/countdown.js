// Count down a QR code's remaining seconds in place; the page works without it.
(function () {
  "use strict";
  var box = document.querySelector("[data-expires]");
  var out = document.getElementById("countdown");
  if (!box || !out) { return; }
  var left = parseInt(out.textContent, 10);
  if (isNaN(left)) { return; }
  var end = Date.now() + left * 1000;
  function tick() {
    var remaining = Math.max(0, Math.round((end - Date.now()) / 1000));
    out.textContent = String(remaining);
    if (remaining === 0) {
      box.classList.add("expired");
      return;
    }
    window.setTimeout(tick, 1000);
  }
  tick();
})();
