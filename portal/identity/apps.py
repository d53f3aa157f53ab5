from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Signing in: the sign-in rate limit's audit, API tokens (stored as hashes) and the sign-in page."""

    name = "portal.identity"
    label = "identity"
    verbose_name = "Sign-in"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from portal.identity import services

        # django-axes tells of a lock-out only through this signal; the receiver only audits it.
        user_locked_out.connect(services.on_user_locked_out, dispatch_uid="canopy-sign-in-locked-out")
