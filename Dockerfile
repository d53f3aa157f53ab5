FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal portal
COPY tenants tenants
COPY provisioning provisioning
COPY identity identity
COPY usage usage
COPY templates templates
COPY static static
COPY manage.py ./
# python-ldap (the [ldap] extra) builds against OpenLDAP's client library, python-gssapi (the
# [kerberos] extra) against MIT Kerberos'; only gcc goes (autoremove would take the runtime libraries with the headers).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libldap2-dev libsasl2-dev libkrb5-dev \
    && pip install --no-cache-dir ".[ldap,kerberos]" \
    && apt-get purge -y gcc && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system canopy && mkdir -p /app/staticfiles && chown canopy /app/staticfiles
USER canopy
EXPOSE 8000
