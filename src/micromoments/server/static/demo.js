/* The demo shop page (serve --dev): Analytics Next when the page loaded it, micromoments.js for the
 * hero slot. Typing in the search box tracks the search and asks /v1/decide again with the query. */
(function () {
  "use strict";
  var cfg = document.getElementById("mm-demo");
  var writeKey = cfg.getAttribute("data-write-key");
  if (window.AnalyticsNext && !window.analytics) {
    // Settings (and so the collector's address) come from this server, not Segment's CDN.
    window.analytics = window.AnalyticsNext.AnalyticsBrowser.load({ writeKey: writeKey, cdnURL: location.origin });
  }
  var analytics = window.analytics;
  if (analytics) { analytics.page(document.title); }
  var box = document.getElementById("search");
  if (!box) { return; }
  var timer = null;
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var query = box.value.trim();
      if (!query) { return; }
      if (analytics) { analytics.track("Products Searched", { query: query }); }
      else if (window.micromoments) { window.micromoments.track("Products Searched", { query: query }); }
      if (window.micromoments) { window.micromoments.refresh({ query: query }); }
    }, 250);
  });
})();
