"""Review pages, mounted at /o/<org>/ (each area's module lists its own URLs)."""

from __future__ import annotations

from .views import accuracy, data, queue

app_name = "review"

urlpatterns = [*queue.urlpatterns, *accuracy.urlpatterns, *data.urlpatterns]
