"""Django's admin site, with ids in range in its "view on site" URL (/admin/r/<type>/<id>/): an id
larger than any row's is a 404 there too, never a query (tenants/converters.py). The per-model
pages take ids in range through tenants.admin.IdsInRangeAdmin."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import URLPattern, URLResolver, path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter


class CanopyAdminSite(admin.AdminSite):
    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [
            path("r/<id:content_type_id>/<id:object_id>/", url.callback, name=url.name)
            if isinstance(url, URLPattern) and url.name == "view_on_site"
            else url
            for url in super().get_urls()
        ]


class CanopyAdminConfig(AdminConfig):
    default_site = "portal.admin_site.CanopyAdminSite"
