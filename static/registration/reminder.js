// The restart reminder is a modal alert dialog: move focus to its Authenticate button
// and keep keyboard and screen-reader focus inside it. Escape (or its Close button, shown
// only with this file) closes it and leaves a banner with the same sentence at the top of
// the page's main content, so the page itself (Version Information, say) stays usable.
// Without this file the dialog still covers the page and its link is reachable with Tab.
(function () {
  "use strict";
  var dialog = document.getElementById("restart-reminder");
  var button = document.getElementById("authenticate");
  if (!dialog || !button) { return; }
  var close = document.getElementById("reminder-close");
  var hint = document.getElementById("reminder-close-hint");
  var banner = document.getElementById("restart-banner");
  var behind = [];
  var open = true;

  // Everything behind the dialog is out of reach while it is shown.
  Array.prototype.forEach.call(document.body.children, function (element) {
    if (element !== dialog && element.tagName !== "SCRIPT" && !element.inert) {
      element.inert = true;
      behind.push(element);
    }
  });

  function closeDialog() {
    if (!open) { return; }
    open = false;
    dialog.hidden = true;
    behind.forEach(function (element) { element.inert = false; });
    if (banner) {
      var main = document.querySelector("main") || document.body;
      main.insertBefore(banner, main.firstChild);
      banner.hidden = false;
      banner.focus();
    }
  }

  document.addEventListener("focusin", function (event) {
    if (open && !dialog.contains(event.target)) { button.focus(); }
  });
  document.addEventListener("keydown", function (event) {
    if (open && (event.key === "Escape" || event.key === "Esc")) {
      event.preventDefault();
      closeDialog();
    }
  });
  // Tab and Shift+Tab cycle inside the dialog instead of leaving the page.
  dialog.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") { return; }
    var stops = dialog.querySelectorAll("a[href], button:not([disabled]):not([hidden])");
    var first = stops[0];
    var last = stops[stops.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });
  if (close) {
    close.hidden = false;
    close.addEventListener("click", closeDialog);
  }
  if (hint) { hint.hidden = false; }
  button.focus();
})();
