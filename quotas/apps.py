from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Quota requests"

    def ready(self) -> None:
        # Quotas is built on tenants, which imports nothing of it: it adds "Ask for more" and the
        # tenant's requests to the tenants' pages here (tenants/console.py); its own views serve them.
        from quotas import views
        from tenants import console

        console.section_register(views.RESOURCES_TAB_SECTION)
        console.section_register(views.MY_ACCESS_SECTION)
