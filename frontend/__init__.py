"""Server-rendered pages: Jinja2 templates, vendored htmx, page controllers, i18n."""
