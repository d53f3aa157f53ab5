FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal portal
COPY tenants tenants
COPY provisioning provisioning
COPY templates templates
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --system canopy && mkdir -p /app/staticfiles && chown canopy /app/staticfiles
USER canopy
EXPOSE 8000
