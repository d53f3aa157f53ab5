from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Signing in: the sign-in rate limit's audit, API tokens (stored as hashes) and the sign-in page."""

    name = "identity"
    label = "identity"
    verbose_name = "Sign-in"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from identity import services

        # django-axes tells of a lock-out only through this signal; the receiver only audits it.
        user_locked_out.connect(services.on_user_locked_out, dispatch_uid="canopy-sign-in-locked-out")
        # Passwords are changed by our services and by Django's own writers (the admin's two password
        # forms, "disable password-based authentication", `manage.py changepassword`), which call no
        # service of ours; every one of them ends in the user's save(), so that is where a changed
        # password or a deactivation revokes the user's API tokens and sessions.
        user = get_user_model()
        pre_save.connect(services.on_user_pre_save, sender=user, dispatch_uid="canopy-user-pre-save")
        post_save.connect(services.on_user_post_save, sender=user, dispatch_uid="canopy-user-post-save")
