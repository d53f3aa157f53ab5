"""Issue 18, point 7, in Chromium: the audit log people can read. Labels and amounts in units; the
filters (tenant, user, action, dates) as pickers that work with htmx and as a plain URL to bookmark;
form errors for bad input; pages; the CSV; and a member reading their own tenant's changes, without
the details that would name parents they cannot see."""

import csv
import datetime
import io
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tenants import services
from tests.browser.conftest import sign_in
from tests.tenants.builders import GI, build_k8s_world, spec

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WITHHELD = "Details are shown to the tenant's admins."


def rows(page):
    return page.locator("table.audit tbody tr")


def test_a_platform_admin_filters_the_log_and_bookmarks_it(page, platform_admin):
    w = build_k8s_world(platform_admin)
    services.allocation_set(
        acting_user=platform_admin,
        tenant=w.dev2,
        spec=spec(w.pool, gpu=2, cpu_millicores=4000, memory_bytes=8 * GI),
    )
    for number in range(55):
        services.tenant_update(acting_user=platform_admin, tenant=w.dev1, description=f"note {number}")
    sign_in(page, platform_admin.username)
    page.goto("/audit/")
    expect(rows(page)).to_have_count(50)
    expect(page.locator(".pagination")).to_contain_text("Page 1 of 2")

    # The action picker lists labels; picking one filters at once (htmx) and the URL follows.
    page.select_option("select[name=action]", label="Allocation changed")
    expect(page).to_have_url(re.compile(r"action=ALLOCATION_UPDATED"))
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Allocation changed")
    expect(rows(page).first).to_contain_text("CPU: 8 CPU → 4 CPU")
    expect(rows(page).first).to_contain_text("Memory: 60 GiB → 8 GiB")
    expect(rows(page).first).to_contain_text("department1/dev2")

    # Tenant from its picker (typed, suggested from what the admin sees), with its sub-tenants.
    page.select_option("select[name=action]", value="")
    expect(page.locator("#audit-tenants option[value='department1/dev1']")).to_have_count(1)
    page.fill("input[name=tenant]", "department1")
    page.check("input[name=subtree]")
    expect(page).to_have_url(re.compile(r"tenant=department1&subtree=on"))
    expect(page.locator(".pagination")).to_contain_text("Page 1 of 2")
    page.click(".pagination a:has-text('Older')")
    expect(page).to_have_url(re.compile(r"subtree=on.*page=2"))
    expect(page.locator(".pagination")).to_contain_text("Page 2 of 2")
    expect(page.locator("input[name=tenant]")).to_have_value("department1")

    # User and dates; the filtered page is a plain URL: opened afresh it shows the same rows.
    page.goto("/audit/")
    page.fill("input[name=user]", "root-admin")
    page.select_option("select[name=action]", label="Membership granted")
    today = timezone.localdate()
    page.fill("input[name=since]", today.isoformat())
    page.fill("input[name=until]", today.isoformat())
    page.click("button:has-text('Filter')")
    expect(page).to_have_url(re.compile(rf"until={today.isoformat()}"))
    expect(rows(page)).to_have_count(6)
    bookmarked = page.url
    page.goto("/audit/")
    page.goto(bookmarked)
    expect(rows(page)).to_have_count(6)
    expect(page.locator("select[name=action]")).to_have_value("MEMBERSHIP_GRANTED")
    with page.expect_download() as download:
        page.click("a:has-text('Download CSV')")
    with open(download.value.path(), newline="") as exported_file:
        exported = list(csv.DictReader(io.StringIO(exported_file.read(), newline="")))
    assert {row["label"] for row in exported} == {"Membership granted"} and len(exported) == 6

    # Bad input: an error on the field, never a 500.
    yesterday = today - datetime.timedelta(days=1)
    page.fill("input[name=until]", yesterday.isoformat())
    page.click("button:has-text('Filter')")
    expect(page.locator("#err-until")).to_contain_text("comes before the start")
    expect(page.locator("table.audit")).to_have_count(0)
    page.reload()  # the same URL without htmx: the field is marked too
    expect(page.locator("#err-until")).to_contain_text("comes before the start")
    expect(page.locator("input[name=until]")).to_have_attribute("aria-invalid", "true")
    page.fill("input[name=until]", "")
    page.fill("input[name=tenant]", "department1/nope")
    page.click("button:has-text('Filter')")
    expect(page.locator("#err-tenant")).to_have_text("No tenant department1/nope among those you can see.")
    page.click("a:has-text('Clear')")
    expect(rows(page)).to_have_count(50)


def test_a_member_reads_their_tenants_changes_without_the_parents_they_cannot_see(page, platform_admin):
    w = build_k8s_world(platform_admin)
    services.allocation_set(acting_user=platform_admin, tenant=w.dev1, spec=spec(w.pool, gpu=0))
    department2 = services.tenant_create(
        acting_user=platform_admin, parent=None, name="department2", allocations=[spec(w.pool, gpu=0)]
    )
    services.tenant_move(acting_user=platform_admin, tenant=w.dev1, new_parent=department2)
    services.allocation_set(
        acting_user=platform_admin, tenant=w.dev1, spec=spec(w.pool, gpu=0, memory_bytes=4 * GI)
    )
    sign_in(page, "bob")
    page.goto("/audit/")
    expect(page.locator("main")).to_contain_text("Changes to the tenants you hold a role on")
    expect(rows(page)).to_have_count(8)
    expect(page.locator("table.audit")).not_to_contain_text("department1")
    expect(page.locator("table.audit")).not_to_contain_text("dev2")
    for label in ("Tenant created", "Allocation created", "Membership granted", "Tenant moved"):
        expect(page.locator("table.audit")).to_contain_text(label)
    # Recorded after the move, under the path Bob sees: its details are his to read.
    changed = rows(page).filter(has_text="Allocation changed").first  # newest first
    expect(changed).to_contain_text("Memory: unlimited → 4 GiB")
    expect(changed).to_contain_text("department2/dev1")
    moved = rows(page).filter(has_text="Tenant moved")
    expect(moved).to_contain_text(WITHHELD)
    expect(rows(page).filter(has_text="Allocation changed").last).to_contain_text(WITHHELD)  # before it
    # His picker suggests only his tenant.
    expect(page.locator("#audit-tenants option")).to_have_count(1)
    expect(page.locator("#audit-tenants option")).to_have_attribute("value", "department2/dev1")
    page.select_option("select[name=action]", label="Tenant moved")
    expect(rows(page)).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("department1")
    # The tenant's own Audit tab reads the same way.
    page.goto(f"/tenants/{w.dev1.pk}/?tab=audit")
    expect(page.locator("table.audit")).to_contain_text("Allocation changed")
    expect(page.locator("table.audit")).not_to_contain_text("department1")
