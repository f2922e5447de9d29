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

  function redraw(mark) {
    return fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (!fresh || !main) { return; }
        var focused = document.activeElement && document.activeElement.name;
        main.replaceWith(fresh);
        fresh.classList.add("fresh");
        document.body.dataset.mark = doc.body.dataset.mark || mark;
        if (focused) {
          var again = fresh.querySelector('[name="' + focused + '"]');
          if (again) { again.focus(); }
        }
      });
  }

  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch("/live", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (d) {
        if (d.mark !== document.body.dataset.mark) { return redraw(d.mark); }
      })
      .then(function () { stamp("live · " + new Date().toISOString().slice(11, 19) + "Z"); })
      .catch(function () { stamp("live refresh failed: retrying"); })
      .then(function () { busy = false; });
  }

  stamp("live");
  setInterval(poll, EVERY);
})();
