"""Signing in: LDAP / Active Directory (django-auth-ldap), OpenID Connect (mozilla-django-oidc) and
local accounts, and mirroring the identity provider's groups as Django groups."""

# Dotted paths of the backends, shared by the settings and the sign-in page (no Django imports here).
LOCAL_BACKEND = "django.contrib.auth.backends.ModelBackend"
# With CANOPY_LOCAL_LOGIN=false only active superusers may still sign in with a local password.
BREAK_GLASS_BACKEND = "identity.backends.BreakGlassBackend"
# django-auth-ldap, with the groups mirrored by Canopy (identity/ldap.py).
LDAP_BACKEND = "identity.ldap.LDAPBackend"
OIDC_BACKEND = "identity.backends.OIDCBackend"
# django-axes: first of all, so a locked-out user name is refused before any backend is asked.
LOCKOUT_BACKEND = "axes.backends.AxesStandaloneBackend"
