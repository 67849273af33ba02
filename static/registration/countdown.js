// Count a code's remaining time down in place, as minutes and seconds (4:59); at 0:00,
// show the "expired" note. The server's page already says how long is left, so the page
// works without this file.
// Markup (templates/registration/countdown.html): <p data-countdown data-seconds="N"
// data-expired-note="ID" data-expired-target="ID" data-say-minutes="{n} minutes left"
// data-say-minute="1 minute left" data-say-seconds="{n} seconds left"> holding
// <span id="countdown">M:SS</span> and <span id="countdown-announce" aria-live="polite">.
// Screen readers hear the time sparingly: at each whole minute, and at 30 and 10 seconds.
// It starts again after refresh.js swaps content in.
(function () {
  "use strict";
  var timer = null;
  var SPOKEN_SECONDS = [30, 10];

  function format(seconds) {
    var rest = seconds % 60;
    return Math.floor(seconds / 60) + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function spoken(box, seconds) {
    if (seconds > 0 && seconds % 60 === 0) {
      var minutes = seconds / 60;
      if (minutes === 1) { return box.getAttribute("data-say-minute") || ""; }
      return (box.getAttribute("data-say-minutes") || "").replace("{n}", String(minutes));
    }
    if (SPOKEN_SECONDS.indexOf(seconds) !== -1) {
      return (box.getAttribute("data-say-seconds") || "").replace("{n}", String(seconds));
    }
    return "";
  }

  function start() {
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    var out = document.getElementById("countdown");
    var box = out && out.closest("[data-countdown]");
    if (!box) { return; }
    var left = parseInt(box.getAttribute("data-seconds"), 10);
    if (isNaN(left)) { return; }
    var announce = document.getElementById("countdown-announce");
    var note = document.getElementById(box.getAttribute("data-expired-note") || "");
    var target = document.getElementById(box.getAttribute("data-expired-target") || "");
    // Count from this browser's clock: the server's clock may differ from it.
    var end = Date.now() + left * 1000;
    var last = left;

    function tick() {
      var remaining = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      out.textContent = format(remaining);
      if (announce && remaining !== last) {
        var words = spoken(box, remaining);
        if (words) { announce.textContent = words; }
      }
      last = remaining;
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
