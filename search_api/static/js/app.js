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

  // Issue 17, point 9: on the phone the period and filters are folded (DSFR accordion) so that the results
  // come first, unless one of them is in use. Runs before the DSFR script (deferred, earlier in the page),
  // which then reads the button's aria-expanded. Without JavaScript the accordion stays open.
  var fold = document.querySelector(".filters-fold .fr-accordion__btn");
  if (fold && window.matchMedia("(max-width: 767.98px)").matches && !fold.hasAttribute("data-actifs")) {
    fold.setAttribute("aria-expanded", "false");
    var folded = document.getElementById(fold.getAttribute("aria-controls"));
    if (folded) { folded.classList.remove("fr-collapse--expanded"); }   // served open for the no-JS case
  }

  // "Annuler" of a confirmation step (point 5): empties the answer area, nothing is sent.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-annuler]") : null;
    if (!button) { return; }
    var area = document.getElementById(button.getAttribute("data-annuler"));
    if (area) { area.textContent = ""; }
  });

  var map = null;

  // Issue 17, point 12: a numbered marker, the card's number drawn as text (textContent, never HTML from data).
  function numberedIcon(number) {
    var badge = document.createElement("span");
    badge.className = "map-num";
    badge.textContent = String(number);
    return L.divIcon({ html: badge, className: "map-marker", iconSize: [28, 28], iconAnchor: [14, 14] });
  }

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
        : (typeof m.number === "number"
          ? L.marker(point, { icon: numberedIcon(m.number), keyboard: false, title: "" })
          : L.circleMarker(point, { radius: 7, color: "#000091", fillOpacity: 0.7 }));
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
