"""The console as people use it, in Chromium: a platform admin builds the MRS document's tenants, a
tenant admin manages only their subtree, a member sees only their tenant in My access."""

import re

import pytest
from playwright.sync_api import expect

from tenants import services
from tenants.models import Allocation, Membership, ResourcePool, Tenant
from tests.browser.conftest import pick_member, sign_in
from tests.tenants.builders import GI, build_k8s_world, user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def create_tenant(
    page, *, name: str, pool: ResourcePool, capacity: str, parent: Tenant | None = None
) -> None:
    page.goto(f"/tenants/new/?parent={parent.pk}" if parent else "/tenants/new/")
    page.fill("#id_name", name)
    page.check(f"#id_pool_{pool.pk}_on")
    page.fill(f"#id_pool_{pool.pk}_capacity", capacity)
    page.click("button:has-text('Create tenant')")


def test_platform_admin_builds_t1_t2_t3_and_sees_a_refusal(page, platform_admin):
    cluster = services.cluster_create(acting_user=platform_admin, name="bigdata", kind="yarn")
    pool = services.pool_update(
        acting_user=platform_admin,
        pool=ResourcePool.objects.get(cluster=cluster),
        cpu_capacity_millicores=64_000,
        memory_capacity_bytes=256 * GI,
    )
    sign_in(page, platform_admin.username)
    expect(page).to_have_url(re.compile(r"/tenants/"))

    for name, capacity in (("t1", "40"), ("t2", "30"), ("t3", "20")):
        create_tenant(page, name=name, pool=pool, capacity=capacity)
        expect(page.locator("h1")).to_have_text(name)
        expect(page.locator(".messages")).to_contain_text(f"Tenant {name} created.")
    t1 = Tenant.objects.get(name_path="t1")

    # A level-2 tenant, from t1's own page.
    page.goto(f"/tenants/{t1.pk}/")
    page.click("a:has-text('Add sub-tenant')")
    expect(page.locator("#id_parent")).to_have_value(str(t1.pk))
    page.fill("#id_name", "etl")
    page.check(f"#id_pool_{pool.pk}_on")
    page.fill(f"#id_pool_{pool.pk}_capacity", "60")
    page.click("button:has-text('Create tenant')")
    expect(page.locator(".breadcrumbs")).to_contain_text("t1")
    expect(page.locator("[data-tenant='t1/etl']")).to_be_visible()
    assert Allocation.objects.get(tenant__name_path="t1/etl").capacity_percent == 60

    # A second child asking for more than t1 has left: refused as the user types, and on submit.
    page.goto(f"/tenants/new/?parent={t1.pk}")
    expect(page.locator(f"#id_pool_{pool.pk}_capacity_hint")).to_have_text("t1 has 40 % of its queue left")
    page.fill("#id_name", "adhoc")
    page.check(f"#id_pool_{pool.pk}_on")
    page.fill(f"#id_pool_{pool.pk}_capacity", "50")
    refusal = page.locator(f"#err-pool_{pool.pk}_capacity")
    expect(refusal).to_contain_text("so 40 % is left")
    page.click("button:has-text('Create tenant')")
    expect(page.locator(f"#err-pool_{pool.pk}_capacity")).to_contain_text("cannot exceed 100 %")
    expect(page.locator("#id_name")).to_have_value("adhoc")  # nothing the user typed is lost
    assert not Tenant.objects.filter(name="adhoc").exists()

    # The tree shows all four, with the level-2 tenant under t1.
    page.goto(f"/tenants/{t1.pk}/?tab=subtenants")
    expect(page.locator("#tab-content")).to_contain_text("etl")
    for path in ("t1", "t2", "t3", "t1/etl"):
        expect(page.locator(f"[data-tenant='{path}']")).to_have_count(1)


def test_a_wrong_unit_is_a_form_error_that_keeps_the_input(page, platform_admin):
    w = build_k8s_world(platform_admin)
    sign_in(page, w.people.dept_admin.username)
    page.goto(f"/tenants/{w.dev2.pk}/allocations/")
    # The check as the user types is an htmx POST: it carries the CSRF token from the base template.
    with page.expect_response(lambda r: r.request.method == "POST" and "/allocations/" in r.url) as checked:
        page.fill(f"#id_pool_{w.pool.pk}_memory", "60GB")
    assert checked.value.status == 200
    assert checked.value.request.headers["x-csrftoken"] and "hx-request" in checked.value.request.headers
    expect(page.locator(f"#err-pool_{w.pool.pk}_memory")).to_contain_text("is not a Kubernetes quantity")

    def is_submit(response):
        return response.request.method == "POST" and "validate=1" not in (response.request.post_data or "")

    with page.expect_response(is_submit) as saved:
        page.click("button:has-text('Save allocations')")
    assert saved.value.status == 200
    expect(page.locator(f"#err-pool_{w.pool.pk}_memory")).to_contain_text("is not a Kubernetes quantity")
    expect(page.locator(f"#id_pool_{w.pool.pk}_memory")).to_have_value("60GB")
    assert Allocation.objects.get(tenant=w.dev2).memory_bytes == 60 * GI


def test_a_tenant_admin_manages_only_their_subtree(page, platform_admin):
    w = build_k8s_world(platform_admin)
    newcomer = user("newcomer")
    elsewhere = services.tenant_create(acting_user=platform_admin, parent=None, name="elsewhere")
    sign_in(page, w.people.dept_admin.username)

    tree = page.locator(".tree")
    expect(tree.locator("[data-tenant]")).to_have_count(3)
    for path in ("department1", "department1/dev1", "department1/dev2"):
        expect(tree.locator(f"[data-tenant='{path}']")).to_have_count(1)
    expect(tree).not_to_contain_text("default")
    expect(tree).not_to_contain_text("elsewhere")

    # Within the subtree: change dev2's allocation inside department1's.
    page.goto(f"/tenants/{w.dev2.pk}/")
    page.click("a:has-text('Edit allocations')")
    # Beside the field and in the refusal, the same figures: none left, so at most what dev2 holds.
    expect(page.locator(f"#id_pool_{w.pool.pk}_gpu_hint")).to_have_text(
        "department1 has 0 GPUs left and dev2 may have at most 2 GPUs"
    )
    page.fill(f"#id_pool_{w.pool.pk}_gpu", "3")
    expect(page.locator(f"#err-pool_{w.pool.pk}_gpu")).to_contain_text(
        "so 0 GPUs is left and department1/dev2 may have at most 2 GPUs."
    )
    page.fill(f"#id_pool_{w.pool.pk}_gpu", "1")
    page.click("button:has-text('Save allocations')")
    expect(page.locator(".messages")).to_contain_text("Allocations of department1/dev2 saved.")
    assert Allocation.objects.get(tenant=w.dev2).gpu == 1

    # Members of dev2.
    page.goto(f"/tenants/{w.dev2.pk}/?tab=members")
    add = page.locator("#add-member")
    pick_member(page, "newcomer", "user:newcomer")  # not listed (no role anywhere): given as typed
    add.locator("select[name=role]").select_option("member")
    add.locator("button:has-text('Add member')").click()
    expect(page.locator(".messages")).to_contain_text("newcomer is now member of department1/dev2")
    assert Membership.objects.filter(user=newcomer, tenant=w.dev2, role="member").exists()

    # Outside the subtree nothing exists.
    response = page.goto(f"/tenants/{elsewhere.pk}/")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    page.console_errors.expect(rf"status of 404 .*/tenants/{elsewhere.pk}/\)")  # Chromium logs a 404

    # department1's own allocation is set from above: no button, and the URL is refused.
    page.goto(f"/tenants/{w.department1.pk}/")
    expect(page.locator("a:has-text('Edit allocations')")).to_have_count(0)
    assert page.goto(f"/tenants/{w.department1.pk}/allocations/").status == 404
    page.console_errors.expect(rf"status of 404 .*/tenants/{w.department1.pk}/allocations/\)")


def test_a_member_sees_only_their_tenant_in_my_access(page, platform_admin):
    w = build_k8s_world(platform_admin)
    services.volume_create(
        acting_user=platform_admin,
        spec=services.VolumeSpec(
            share=w.share,
            sub_path="d1",
            name="department1-public",
            capacity_bytes=100 * GI,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    sign_in(page, "bob")
    expect(page).to_have_url(re.compile(r"/me/$"))
    main = page.locator("main")
    expect(page.locator("main > article")).to_have_count(1)
    expect(main).to_contain_text("department1/dev1")
    expect(main).to_contain_text("1 GPU allocated")
    expect(main).to_contain_text("department1-public-dev1")
    expect(main).not_to_contain_text("dev2")
    assert page.goto(f"/tenants/{w.dev2.pk}/").status == 404
    page.console_errors.expect(rf"status of 404 .*/tenants/{w.dev2.pk}/\)")
