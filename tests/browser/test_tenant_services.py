"""Issue 18, point 11, in Chromium: a tenant admin links a Hive database to her sub-tenant on the
Services tab; a refused name keeps what she typed and says why; the linked database shows where its
warehouse directory is, and Remove unlinks it."""

import pytest
from playwright.sync_api import expect

from tenants import services
from tenants.models import TenantService
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD
from tests.tenants.builders import build_yarn_world, spec

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_tenant_admin_links_a_hive_database_on_the_services_tab(page, platform_admin):
    w = build_yarn_world(platform_admin)
    etl = services.tenant_create(
        acting_user=w.a, parent=w.t1, name="etl", allocations=[spec(w.pool, capacity_percent=50)]
    )
    sign_in(page, "usera", PASSWORD)
    page.goto(f"/tenants/{etl.pk}/")
    page.get_by_role("tab", name="Services").click()
    form = page.locator("#add-service")
    expect(form).to_be_visible()
    expect(page.locator("#tenant-services")).to_contain_text("No services linked.")

    form.locator("input[name=name]").fill("ETL-staging")
    form.get_by_role("button", name="Link database").click()
    page.wait_for_load_state("networkidle")
    expect(page.locator(".messages")).to_contain_text("A Hive database name is 1 to 128 lower-case letters")
    expect(page.locator("#add-service input[name=name]")).to_have_value("ETL-staging")
    assert not TenantService.objects.exists()

    page.locator("#add-service input[name=name]").fill("etl_staging")
    page.locator("#add-service").get_by_role("button", name="Link database").click()
    page.wait_for_load_state("networkidle")
    row = page.locator('tr[data-service="hive_database:etl_staging"]')
    expect(row).to_contain_text("/warehouse/tablespace/managed/hive/etl_staging.db")
    assert TenantService.objects.get().tenant_id == etl.pk

    row.get_by_role("button", name="Remove").click()
    page.wait_for_load_state("networkidle")
    expect(page.locator(".messages")).to_contain_text("its directory and data stay on HDFS")
    expect(page.locator("#tenant-services")).to_contain_text("No services linked.")
    assert not TenantService.objects.exists()
