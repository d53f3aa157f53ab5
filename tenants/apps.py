from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from tenants import console
        from tenants.views.service_pages import services_tab_context

        # The Services tab (Hive databases) goes through the registry like other apps' tabs.
        console.tab_register(
            console.TenantTab(
                key="services",
                label="Services",
                template="tenants/partials/_tab_services.html",
                context=services_tab_context,
                before="subtenants",
            )
        )
