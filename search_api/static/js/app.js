/* Progressive enhancement of the SAS pages: CSRF header for htmx requests, the results map (Leaflet). */
(function () {
  "use strict";

  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.body.getAttribute("data-csrf");
    if (token) { event.detail.headers["X-CSRF-Token"] = token; }
  });

  // htmx leaves 4xx answers unswapped; a 429 (rate limit) carries a French message worth showing.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 429) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  var map = null;

  function drawMap() {
    var element = document.getElementById("carte");
    if (map) { map.remove(); map = null; }
    if (!element || typeof L === "undefined") { return; }
    var markers = JSON.parse(element.getAttribute("data-markers") || "[]");
    if (!markers.length) { return; }
    map = L.map(element, { scrollWheelZoom: false });
    var tiles = element.getAttribute("data-tiles");
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 18, attribution: element.getAttribute("data-attribution") || "" }).addTo(map);
    }
    var bounds = [];
    markers.forEach(function (m) {
      var point = [m.lat, m.lon];
      bounds.push(point);
      var marker = m.origin
        ? L.circleMarker(point, { radius: 8, color: "#ce0500", fillOpacity: 0.8 })
        : L.circleMarker(point, { radius: 7, color: "#000091", fillOpacity: 0.7 });
      // Leaflet reads a string tooltip as HTML; names come from the directory and vendors, so the tooltip
      // gets a text node: "<img onerror=…>" in a name stays text.
      var label = document.createElement("span");
      label.textContent = m.label == null ? "" : String(m.label);
      marker.bindTooltip(label);
      if (m.target) {
        marker.on("click", function () {
          var card = document.getElementById(m.target);
          if (card) { card.scrollIntoView({ behavior: "smooth", block: "center" }); card.focus(); }
        });
      }
      marker.addTo(map);
    });
    if (bounds.length === 1) { map.setView(bounds[0], 13); } else { map.fitBounds(bounds, { padding: [24, 24], maxZoom: 14 }); }
  }

  // The CPTS page's map (issue 17, point 7): its own element and function, the results map is untouched.
  // Markers come from a data attribute; names are set as text, never as HTML.
  function drawCptsMap() {
    var element = document.getElementById("carte-cpts");
    if (!element || typeof L === "undefined") { return; }
    var markers = JSON.parse(element.getAttribute("data-markers") || "[]");
    if (!markers.length) { return; }
    var cptsMap = L.map(element, { scrollWheelZoom: false });
    var tiles = element.getAttribute("data-tiles");
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 18, attribution: element.getAttribute("data-attribution") || "" }).addTo(cptsMap);
    }
    var bounds = [];
    markers.forEach(function (m) {
      var point = [m.lat, m.lon];
      bounds.push(point);
      var marker = L.circleMarker(point, m.origin ? { radius: 8, color: "#ce0500", fillOpacity: 0.8 }
                                                 : { radius: 7, color: "#000091", fillOpacity: 0.7 });
      var label = document.createElement("span");
      label.textContent = m.label == null ? "" : String(m.label);
      marker.bindTooltip(label);
      if (m.target) {
        marker.on("click", function () {
          var card = document.getElementById(m.target);
          if (card) { card.scrollIntoView({ behavior: "smooth", block: "center" }); card.focus(); }
        });
      }
      marker.addTo(cptsMap);
    });
    if (bounds.length === 1) { cptsMap.setView(bounds[0], 13); } else { cptsMap.fitBounds(bounds, { padding: [24, 24], maxZoom: 14 }); }
  }

  document.addEventListener("DOMContentLoaded", drawMap);
  document.addEventListener("DOMContentLoaded", drawCptsMap);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "resultats") { drawMap(); }
  });
})();
