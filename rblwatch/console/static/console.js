// rblwatch console: live refresh. Every few seconds ask /live for the store's mark (the newest
// event id and the listed count); when it differs from the page's, fetch this same page and
// swap its <main> in place, so a new listing appears without a reload. Polling rather than
// server-sent events: a request every 5 s is nothing to the listener, holds no connection
// open against its connection cap, and works through any proxy. Without JavaScript, the
// header's "refresh" link reloads the page.
(function () {
  "use strict";
  var EVERY = 5000;
  var live = document.getElementById("live");
  var state = document.createElement("span");
  var busy = false;
  if (live) { live.prepend(state, " · "); }

  function stamp(text) {
    state.textContent = text;
  }

  // someone filling in a search or filter form: redraw at a later poll, not under their hands
  function typing() {
    var el = document.activeElement;
    return !!el && !!el.form && el.form.closest("main") !== null;
  }

  function redraw(mark) {
    return fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (!fresh || !main) { return; }
        var before = {};
        main.querySelectorAll("tbody tr").forEach(function (tr) { before[tr.textContent] = 1; });
        main.replaceWith(fresh);
        fresh.querySelectorAll("tbody tr").forEach(function (tr) {
          if (!before[tr.textContent]) { tr.classList.add("fresh"); }  // new: flash it
        });
        document.body.dataset.mark = doc.body.dataset.mark || mark;
      });
  }

  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch("/live", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (d) {
        if (d.mark !== document.body.dataset.mark && !typing()) { return redraw(d.mark); }
      })
      .then(function () { stamp("live · " + new Date().toISOString().slice(11, 19) + "Z"); })
      .catch(function () { stamp("live refresh failed: retrying"); })
      .then(function () { busy = false; });
  }

  stamp("live");
  setInterval(poll, EVERY);
})();
