/*! micromoments.js: fills <div data-mm-slot="NAME"> with the content /v1/decide picks for this
 * visitor, and logs the exposure (Content Viewed) and the click (Content Clicked) with the
 * decision id. No dependencies. Everything from the server is set as text, never as HTML.
 *
 *   <script src="https://mm.example/js/micromoments.js" data-write-key="WRITE_KEY" defer></script>
 *
 * Optional attributes: data-host (default: where this script came from), data-require-consent
 * (nothing happens until micromoments.consent(true)), data-location="lat,lon" (a coarse location
 * the site already knows), data-geolocation (use the browser's position when already granted).
 * Do-Not-Track turns it off. See docs/web.md.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var attr = function (name) { return script.getAttribute("data-" + name); };
  var host = (attr("host") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var writeKey = attr("write-key") || "";
  var consent = attr("require-consent") === null ? null : false;
  var extra = {};
  var OWN_ID = "mm_anonymous_id";

  function dnt() {
    return navigator.doNotTrack === "1" || window.doNotTrack === "1" || navigator.msDoNotTrack === "1";
  }
  function allowed() {
    if (dnt() || window.micromomentsConsent === false) { return false; }
    return consent !== false;
  }
  function stored(name) {
    // Analytics Next keeps its ids in localStorage (JSON text) and in cookies.
    var value = null;
    try { value = window.localStorage.getItem(name); } catch (e) { value = null; }
    if (!value) {
      var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      value = match ? decodeURIComponent(match[1]) : null;
    }
    if (!value) { return null; }
    try { var parsed = JSON.parse(value); return typeof parsed === "string" ? parsed : null; }
    catch (e) { return value; }
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return "mm-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }
  function ids() {
    var anon = stored("ajs_anonymous_id");
    var user = stored("ajs_user_id");
    if (!anon) {
      try {
        anon = window.localStorage.getItem(OWN_ID);
        if (!anon) { anon = uuid(); window.localStorage.setItem(OWN_ID, anon); }
      } catch (e) { anon = anon || uuid(); }
    }
    var out = { anonymousId: anon };
    if (user) { out.userId = user; }
    return out;
  }
  function post(path, body, beacon) {
    var text = JSON.stringify(body);
    // text/plain with the write key in the body: a "simple" request, no CORS preflight.
    if (beacon && navigator.sendBeacon && navigator.sendBeacon(host + path, text)) { return Promise.resolve(null); }
    return fetch(host + path, { method: "POST", body: text, keepalive: !!beacon, credentials: "omit",
                                headers: { "Content-Type": "text/plain" } })
      .then(function (r) { return r.ok ? r.json() : null; }).catch(function () { return null; });
  }
  function track(event, properties, beacon) {
    if (!allowed()) { return Promise.resolve(null); }
    var body = ids();
    body.writeKey = writeKey;
    body.event = event;
    body.properties = properties || {};
    body.messageId = uuid();
    body.timestamp = new Date().toISOString();
    body.context = { page: { url: location.href, path: location.pathname, referrer: document.referrer,
                             title: document.title }, library: { name: "micromoments.js" } };
    return post("/v1/t", body, beacon);
  }
  function context(slot) {
    var ctx = { channel: "web", placement: slot, page: { url: location.href, path: location.pathname,
                referrer: document.referrer, title: document.title }, local_time: new Date().toString() };
    try { ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* unknown */ }
    var where = attr("location");
    if (where) {
      var parts = where.split(",");
      ctx.lat = parseFloat(parts[0]); ctx.lon = parseFloat(parts[1]);
    }
    for (var key in extra) { if (Object.prototype.hasOwnProperty.call(extra, key)) { ctx[key] = extra[key]; } }
    return ctx;
  }
  function safeUrl(value) {
    try {
      var url = new URL(String(value), location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }
  function render(el, decision) {
    var content = decision && decision.content;
    if (!content) { return; }
    var box = document.createElement("div");
    box.className = "mm-content";
    if (content.image && safeUrl(content.image)) {
      var img = document.createElement("img");
      img.src = safeUrl(content.image); img.alt = String(content.title || "");
      box.appendChild(img);
    }
    if (content.title) {
      var h = document.createElement("h3"); h.className = "mm-title"; h.textContent = String(content.title);
      box.appendChild(h);
    }
    if (content.body) {
      var p = document.createElement("p"); p.className = "mm-text"; p.textContent = String(content.body);
      box.appendChild(p);
    }
    var href = content.url ? safeUrl(content.url) : null;
    if (href) {
      var a = document.createElement("a"); a.className = "mm-link"; a.href = href;
      a.textContent = String(content.cta || "Learn more");
      a.addEventListener("click", function () {
        track("Content Clicked", { decision_id: decision.decision_id, content_id: decision.content_id,
                                   slot: el.getAttribute("data-mm-slot") }, true);
      });
      box.appendChild(a);
    }
    el.replaceChildren(box);
    el.setAttribute("data-mm-decision", decision.decision_id || "");
    el.setAttribute("data-mm-content", decision.content_id || "");
    viewed(el, decision);
  }
  function viewed(el, decision) {
    var send = function () {
      track("Content Viewed", { decision_id: decision.decision_id, content_id: decision.content_id,
                                slot: el.getAttribute("data-mm-slot") });
    };
    if (!("IntersectionObserver" in window)) { send(); return; }
    var seen = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) { seen.disconnect(); send(); }
    });
    seen.observe(el);
  }
  function decide(el) {
    var slot = el.getAttribute("data-mm-slot");
    var body = ids();
    body.writeKey = writeKey;
    body.context = context(slot);
    return post("/v1/decide", body, false).then(function (decision) {
      if (decision && decision.status === "chosen") { render(el, decision); }
      return decision;
    });
  }
  function refresh(more) {
    if (more) { for (var k in more) { if (Object.prototype.hasOwnProperty.call(more, k)) { extra[k] = more[k]; } } }
    if (!allowed()) { return Promise.resolve([]); }
    var slots = document.querySelectorAll("[data-mm-slot]");
    return Promise.all(Array.prototype.map.call(slots, decide));
  }
  function whenAnalyticsReady(then) {
    // Wait (at most 1.5 s) for Analytics Next to write its ids, so both use the same anonymous id.
    var a = window.analytics;
    if (!a || typeof a.ready !== "function") { then(); return; }
    var done = false;
    var go = function () { if (!done) { done = true; then(); } };
    try { a.ready(go); } catch (e) { go(); }
    setTimeout(go, 1500);
  }
  function start() {
    var withPosition = function () {
      if (attr("geolocation") === null || !navigator.permissions || !navigator.geolocation) { refresh(); return; }
      navigator.permissions.query({ name: "geolocation" }).then(function (p) {
        if (p.state !== "granted") { refresh(); return; }
        navigator.geolocation.getCurrentPosition(function (pos) {
          // Coarse: two decimals, about a kilometre.
          refresh({ lat: Math.round(pos.coords.latitude * 100) / 100, lon: Math.round(pos.coords.longitude * 100) / 100 });
        }, function () { refresh(); }, { maximumAge: 600000, timeout: 2000 });
      }, function () { refresh(); });
    };
    whenAnalyticsReady(withPosition);
  }

  window.micromoments = {
    refresh: refresh,
    track: track,
    ids: ids,
    consent: function (given) { consent = !!given; if (consent) { refresh(); } },
  };
  // After the page's other deferred scripts (which may set up window.analytics).
  var started = false;
  var once = function () { if (!started) { started = true; start(); } };
  if (document.readyState === "complete") { once(); }
  else { document.addEventListener("DOMContentLoaded", once); window.addEventListener("load", once); }
})();
