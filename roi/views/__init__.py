"""Planning pages (HTML + HTMX), one module per screen; ``roi.urls`` maps them."""
