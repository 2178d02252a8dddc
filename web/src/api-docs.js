// Renders the served OpenAPI document with Swagger UI (bundled from npm: no CDN).
window.addEventListener('DOMContentLoaded', () => {
  window.ui = SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#reference',
    deepLinking: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false,
    // Never phones home to validate the document.
    validatorUrl: null,
  });
});
