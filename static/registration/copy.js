// Copy the license request text; without JavaScript the button stays hidden and the
// text block is there to copy by hand.
(function () {
  "use strict";
  var button = document.getElementById("copy-request");
  if (!button) { return; }
  var source = document.getElementById(button.getAttribute("data-copy-target"));
  var status = document.getElementById("copy-status");
  if (!source) { return; }

  function say(text) {
    if (status) { status.textContent = text; }
  }

  function selectSource() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // Plain HTTP on an intranet is not a secure context, so navigator.clipboard may be
  // missing; the older selection copy works there.
  function copyBySelection() {
    selectSource();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    say(button.getAttribute(copied ? "data-copied" : "data-failed"));
  }

  button.addEventListener("click", function () {
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button.getAttribute("data-copied")); },
        copyBySelection
      );
    } else {
      copyBySelection();
    }
  });
  button.hidden = false;
})();
