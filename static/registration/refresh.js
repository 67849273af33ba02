// Refresh the QR code in place. Without this file the Refresh form is a plain POST that
// redirects back to the Registration page; with it, the same POST is sent by fetch (the
// form's own CSRF token travels in its fields), and the page it ends on replaces this
// page's content, so the new QR code appears without a reload and the URL stays put.
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser || !window.FormData) { return; }
  var busy = false;

  // Put the content of the page fetched into this page; false if it is another page.
  function swap(fresh) {
    var newMain = fresh.querySelector("main");
    var main = document.querySelector("main");
    if (!newMain || !main) { return false; }
    main.replaceChildren.apply(main, Array.prototype.slice.call(newMain.childNodes));
    document.title = fresh.title;
    // The watermark follows the registration state; keep it in step with the page.
    var mark = document.getElementById("unregistered-watermark");
    var newMark = fresh.getElementById("unregistered-watermark");
    if (mark && !newMark) { mark.remove(); }
    if (!mark && newMark) { document.body.appendChild(document.adoptNode(newMark)); }
    document.dispatchEvent(new CustomEvent("licserver:replaced"));
    // Keep keyboard users where they were: on the (new) Refresh button.
    var focus = document.getElementById("refresh") || document.getElementById("state-heading");
    if (focus) { focus.focus(); }
    return true;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-refresh")) { return; }
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    form.setAttribute("aria-busy", "true");
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        // Redirected away from the Registration page (the session ended, say): go there.
        if (response.redirected && !fresh.getElementById("state-heading")) {
          window.location.assign(response.url);
          return;
        }
        if (!swap(fresh)) {
          window.location.assign(response.url);
          return;
        }
        // After a redirect the address is the Registration page's, so a reload is a GET.
        if (response.redirected && response.url !== window.location.href) {
          window.history.replaceState(null, "", response.url);
        }
      });
    }).catch(function () {
      // Network trouble: fall back to the plain form post.
      form.submit();
    }).finally(function () {
      busy = false;
      form.removeAttribute("aria-busy");
    });
  });
})();
