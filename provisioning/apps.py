from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"

    def ready(self) -> None:
        # tenants imports no other app: provisioning tells it what to call (tenants/changes.py).
        from provisioning import services
        from tenants import changes

        changes.recorder_register("provisioning", services.ProvisioningRecorder())
