"""Issue 18, point 1, in Chromium: a new tenant from the tree's root (platform admins: level 1;
tenant admins: below what they administer), and a create form that redraws what depends on the
parent when another one is chosen: the heading, the breadcrumbs, the parent's pools with what is
left of each, every field's errors; nothing the user typed is lost, nothing says "required" before
the submit, and the browser logs no error (the fixture fails the test on any)."""

import re

import pytest
from playwright.sync_api import expect

from tenants import services
from tenants.models import Allocation, Tenant
from tests.browser.conftest import sign_in
from tests.tenants.builders import build_k8s_world

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def choose_parent(page, parent: Tenant | None) -> None:
    """Pick another parent and wait for its redraw (the heading names it)."""
    with page.expect_response(
        lambda r: r.request.method == "POST" and "redraw=1" in (r.request.post_data or "")
    ):
        page.select_option("#id_parent", str(parent.pk) if parent else "")
    heading = f"New sub-tenant of {parent.name_path}" if parent else "New level-1 tenant"
    expect(page.locator("h1")).to_have_text(heading)


def test_a_platform_admin_creates_from_the_root_and_the_form_follows_the_parent(page, platform_admin):
    w = build_k8s_world(platform_admin)
    empty = services.tenant_create(acting_user=platform_admin, parent=None, name="empty")
    gpu, cpu = f"#id_pool_{w.pool.pk}_gpu", f"#id_pool_{w.pool.pk}_cpu"
    sign_in(page, platform_admin.username)
    page.goto("/tenants/")

    page.locator(".tree-panel").get_by_role("button", name="New level-1 tenant").click()
    expect(page).to_have_url(re.compile(r"/tenants/new/$"))
    expect(page.locator("h1")).to_have_text("New level-1 tenant")
    expect(page.locator("#id_parent")).to_have_value("")
    # At level 1, what the level-1 tenants leave of the pool (department1 holds its 3 GPUs).
    expect(page.locator(f"{gpu}_hint")).to_have_text("Pool gpu-cluster/default has 0 GPUs left")
    expect(page.locator(f"{cpu}_hint")).to_have_text("Pool gpu-cluster/default has 12 CPU left")

    # A parent with no allocations: nothing to give.
    choose_parent(page, empty)
    expect(page.locator("#create-resources")).to_contain_text("empty has no allocations yet")
    expect(page.locator(gpu)).to_have_count(0)
    expect(page.locator(".breadcrumbs")).to_contain_text("empty")
    expect(page).to_have_url(re.compile(rf"/tenants/new/\?parent={empty.pk}$"))
    assert page.title().startswith("New sub-tenant of empty")

    # Another parent brings its pools back, with what that parent has left of each; what was typed
    # stays, and an empty name is not an error before the submit.
    page.fill("#id_display_name", "Research")
    choose_parent(page, w.dev2)
    expect(page.locator(f"{gpu}_hint")).to_have_text("dev2 has 2 GPUs left")
    expect(page.locator(f"{cpu}_hint")).to_have_text("dev2 has 8 CPU left")
    expect(page.locator("#id_display_name")).to_have_value("Research")
    expect(page.locator("#err-name")).to_be_empty()
    expect(page.locator(".breadcrumbs")).to_contain_text("department1/dev2")

    # Amounts are checked as they are typed, with no name yet.
    page.check(f"#id_pool_{w.pool.pk}_on")
    page.fill(gpu, "3")
    expect(page.locator(f"#err-pool_{w.pool.pk}_gpu")).to_contain_text("so 2 GPUs is left")
    expect(page.locator("#err-name")).to_be_empty()

    # Another parent checks the same amounts against what it has left.
    choose_parent(page, w.department1)
    expect(page.locator(f"{gpu}_hint")).to_have_text("department1 has 0 GPUs left")
    expect(page.locator(f"{cpu}_hint")).to_have_text("department1 is unlimited here")
    expect(page.locator(gpu)).to_have_value("3")
    expect(page.locator(f"#err-pool_{w.pool.pk}_gpu")).to_contain_text("so 0 GPUs is left")

    # Back under dev2, within what it has left: created.
    choose_parent(page, w.dev2)
    expect(page.locator(f"#err-pool_{w.pool.pk}_gpu")).to_contain_text("so 2 GPUs is left")
    page.fill(gpu, "2")
    expect(page.locator(f"#err-pool_{w.pool.pk}_gpu")).to_be_empty()
    # dev2's CPU and memory are limited, so its sub-tenants' are too.
    expect(page.locator(f"#err-pool_{w.pool.pk}_cpu")).to_contain_text("cannot be unlimited")
    page.fill(cpu, "4")
    page.fill(f"#id_pool_{w.pool.pk}_memory", "16Gi")
    expect(page.locator(f"#err-pool_{w.pool.pk}_cpu")).to_be_empty()
    expect(page.locator(f"#err-pool_{w.pool.pk}_memory")).to_be_empty()
    page.fill("#id_name", "research")
    page.click("button:has-text('Create tenant')")
    expect(page.locator(".messages")).to_contain_text("Tenant department1/dev2/research created.")
    created = Tenant.objects.get(name_path="department1/dev2/research")
    assert created.display_name == "Research"
    assert Allocation.objects.get(tenant=created).gpu == 2


def test_the_submit_says_what_is_missing(page, platform_admin):
    build_k8s_world(platform_admin)
    sign_in(page, platform_admin.username)
    page.goto("/tenants/new/")
    page.fill("#id_display_name", "No name yet")
    expect(page.locator("#err-name")).to_be_empty()
    page.click("button:has-text('Create tenant')")
    expect(page.locator("#err-name")).to_have_text("This field is required.")
    expect(page.locator("#id_display_name")).to_have_value("No name yet")


def test_a_tenant_admin_makes_sub_tenants_of_what_they_administer(page, platform_admin):
    w = build_k8s_world(platform_admin)
    sign_in(page, w.people.dept_admin.username)
    page.goto("/tenants/")
    panel = page.locator(".tree-panel")
    expect(panel.get_by_role("button", name="New level-1 tenant")).to_have_count(0)
    panel.get_by_role("button", name="New sub-tenant").click()

    # The form starts at the first tenant they administer; no level-1 choice.
    expect(page.locator("h1")).to_have_text("New sub-tenant of department1")
    expect(page.locator("#id_parent")).to_have_value(str(w.department1.pk))
    options = page.locator("#id_parent option").all_inner_texts()
    assert options == ["department1", "department1/dev1", "department1/dev2"]
    expect(page.locator(f"#id_pool_{w.pool.pk}_gpu_hint")).to_have_text("department1 has 0 GPUs left")

    choose_parent(page, w.dev1)
    expect(page.locator(f"#id_pool_{w.pool.pk}_gpu_hint")).to_have_text("dev1 has 1 GPU left")
    page.fill("#id_name", "interns")
    page.click("button:has-text('Create tenant')")
    expect(page.locator(".messages")).to_contain_text("Tenant department1/dev1/interns created.")


def test_people_who_administer_nothing_get_no_new_tenant_button(page, platform_admin):
    w = build_k8s_world(platform_admin)
    services.membership_grant(acting_user=platform_admin, tenant=w.dev1, user=w.tom, role="viewer")
    sign_in(page, w.tom.username)
    page.goto("/tenants/")
    expect(page.locator(".tree-panel [data-tenant]")).not_to_have_count(0)
    expect(page.locator(".tree-panel a[role=button]")).to_have_count(0)
