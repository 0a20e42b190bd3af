// Starts Swagger UI on the documents listed in #swagger-ui's data-documents
// (name and same-origin URL of each). A file rather than an inline script,
// so the page's Content-Security-Policy can allow scripts from 'self' only.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var documents = JSON.parse(root.getAttribute("data-documents"));
  window.ui = SwaggerUIBundle({
    urls: documents,
    "urls.primaryName": documents[0].name,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    // The default would load a validation badge from another host.
    validatorUrl: null,
    // The API key and token set in "Authorize" survive a reload and a
    // switch to the other document (kept in this browser's localStorage).
    persistAuthorization: true,
    displayRequestDuration: true,
    // ?url= and ?configUrl= cannot point the page at another document.
    queryConfigEnabled: false
  });
})();
