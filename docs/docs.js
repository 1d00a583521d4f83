// Starts Swagger UI on the service's own OpenAPI document.  A file of its
// own, not an inline <script>: the page's Content-Security-Policy allows
// scripts from 'self' only (nginx/orders.conf.in).
'use strict';
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    // No remote validator badge: it would call validator.swagger.io.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
