/* Starts the vendored Swagger UI on /docs (an external file: the page's CSP allows no inline script). */
(function () {
  "use strict";
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,          // never send the schema to swagger.io's validator
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
