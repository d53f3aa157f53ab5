from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"

    def ready(self) -> None:
        # tenants imports no other app: provisioning tells it what to call when a tenant changes
        # (tenants/changes.py) and which parts of the console's pages are provisioning's
        # (tenants/console.py; provisioning's views serve them).
        from provisioning import services, views
        from tenants import changes, console

        changes.recorder_register("provisioning", services.ProvisioningRecorder())
        console.tab_register(views.CLUSTERS_TAB)
        console.section_register(views.CLUSTER_CONNECTIONS)
        console.section_register(views.CONNECTION_GOING)
        console.section_register(views.KUBECONFIG_LINKS)
