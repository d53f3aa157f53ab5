"""The production storage collects every static file: WhiteNoise's manifest storage rewrites each
reference a CSS or JS file makes (url(), sourceMappingURL) and refuses one to a missing file, so a
vendored file that names a source map we do not ship breaks `collectstatic` (static/vendor/README.md)."""

from django.core.management import call_command
from django.test import override_settings

PRODUCTION_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def test_collectstatic_with_the_production_storage_finds_every_referenced_file(tmp_path):
    # Django's setting_changed receivers hand staticfiles_storage the overridden storage, and back.
    with override_settings(STORAGES=PRODUCTION_STORAGES, STATIC_ROOT=str(tmp_path)):
        call_command("collectstatic", interactive=False, verbosity=0)
        manifest = (tmp_path / "staticfiles.json").read_text()
    for name in (
        "vendor/chartjs/chart.umd.js",
        "vendor/tom-select/tom-select.base.min.js",
        "js/member_picker.js",
    ):
        assert f'"{name}"' in manifest
