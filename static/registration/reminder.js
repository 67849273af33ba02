// The restart reminder is a modal alert dialog: move focus to its Authenticate button
// and keep keyboard and screen-reader focus inside it. Without this file the dialog
// still covers the page and its link is reachable with Tab.
(function () {
  "use strict";
  var dialog = document.getElementById("restart-reminder");
  var button = document.getElementById("authenticate");
  if (!dialog || !button) { return; }
  // Everything behind the dialog is out of reach while it is shown.
  Array.prototype.forEach.call(document.body.children, function (element) {
    if (element !== dialog && element.tagName !== "SCRIPT") { element.inert = true; }
  });
  document.addEventListener("focusin", function (event) {
    if (!dialog.contains(event.target)) { button.focus(); }
  });
  // Tab and Shift+Tab cycle inside the dialog instead of leaving the page.
  dialog.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") { return; }
    var stops = dialog.querySelectorAll("a[href], button:not([disabled])");
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
  button.focus();
})();
