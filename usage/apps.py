from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        # Usage is built on tenants and provisioning, which import nothing of it: it adds its parts
        # to the tenants' pages here (tenants/console.py); its own views serve them.
        from tenants import console, running_work
        from usage import selectors, views

        console.tab_register(views.MONITORING_TAB)
        console.section_register(views.MY_JOBS)
        console.pool_usage_register(views.pool_usage)
        # Ending a time-bound grant asks what running work holds (tenants/running_work.py).
        running_work.held_reader_register(selectors.running_work_held)
