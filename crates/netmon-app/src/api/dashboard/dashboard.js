// netmon dashboard: updates statuses in place. Served from the app (CSP script-src 'self');
// no framework, no build. The server streams which targets changed (Server-Sent Events, where the
// host can) and the script then reads live.json; where there is no stream it polls live.json,
// which answers 304 while nothing changed.
(function () {
  "use strict";
  var body = document.body;
  if (!body || !body.dataset || body.dataset.root === undefined) return;
  var root = body.dataset.root;
  var etag = null;
  var pending = null;
  var POLL_MS = 15000;
  var stateEl = document.getElementById("live-state");

  function say(text) { if (stateEl) stateEl.textContent = text; }

  function since(iso) {
    if (!iso) return "";
    var s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return "for " + s + " s";
    if (s < 3600) return "for " + Math.floor(s / 60) + " min";
    if (s < 86400) return "for " + Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return "for " + Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function apply(data) {
    var known = {};
    (data.targets || []).forEach(function (t) {
      known[t.id] = true;
      var row = document.getElementById("t-" + t.id);
      if (!row) return;
      var cls = "s-" + t.css;
      if (!row.classList.contains(cls)) {
        ["s-ok", "s-warn", "s-down", "s-maint", "s-none"].forEach(function (c) { row.classList.remove(c); });
        row.classList.add(cls);
        row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash");
      }
      var label = row.querySelector("[data-f=label]");
      if (label && label.textContent !== t.label) label.textContent = t.label;
      var s = row.querySelector("[data-f=since]");
      if (s && t.since) s.textContent = since(t.since);
    });
    Object.keys(data.counts || {}).forEach(function (k) {
      var el = document.querySelector("[data-count=" + k + "]");
      if (el) el.textContent = String(data.counts[k]);
    });
    // A target added or removed elsewhere: the list itself changed.
    var rows = document.querySelectorAll("#rows [data-id]");
    for (var i = 0; i < rows.length; i++) {
      if (!known[rows[i].getAttribute("data-id")]) { location.reload(); return; }
    }
  }

  function refresh() {
    var headers = {};
    if (etag) headers["If-None-Match"] = etag;
    return fetch(root + "live.json", { headers: headers, credentials: "same-origin", cache: "no-cache" })
      .then(function (r) {
        if (r.status === 401) { location.reload(); return null; }
        if (r.status === 304 || !r.ok) return null;
        etag = r.headers.get("ETag");
        return r.json();
      })
      .then(function (data) { if (data) apply(data); })
      .catch(function () {});
  }

  function soon() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; refresh(); }, 300);
  }

  function markChecked(ids) {
    ids.forEach(function (id) {
      var row = document.getElementById("t-" + id);
      var el = row && row.querySelector("[data-f=checked]");
      if (el) el.textContent = "checked just now";
    });
  }

  // A hidden tab does not poll (each poll is a request the operator pays for in the cloud);
  // it catches up as soon as it is shown again.
  function poll() {
    say("Updates every 15 s.");
    refresh();
    setInterval(function () { if (!document.hidden) refresh(); }, POLL_MS);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  }

  if (body.dataset.live === "sse" && window.EventSource) {
    var es = new EventSource(root + "live");
    var failures = 0;
    es.addEventListener("open", function () { failures = 0; say("Live."); });
    es.addEventListener("change", function (e) {
      try {
        var d = JSON.parse(e.data);
        if (d.kind === "result") markChecked(d.targets || []);
      } catch (err) { /* a malformed event only costs a refresh */ }
      soon();
    });
    es.addEventListener("reload", function () { es.close(); location.reload(); });
    es.addEventListener("error", function () {
      failures += 1;
      // The browser reconnects with Last-Event-ID; after repeated failures, poll instead.
      if (es.readyState === EventSource.CLOSED || failures > 3) { es.close(); poll(); }
      else say("Reconnecting…");
    });
  } else {
    poll();
  }
})();
