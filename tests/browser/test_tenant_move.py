"""Issue 18, point 9, in Chromium: move a subtree in the console. Those who may (as in the API:
manage the tenant, administer the new parent) pick the new parent among the valid ones; a refusal of
the service (the new parent has not enough left, a sub-tenant cannot be unlimited under a limited
parent) is an error on the picker that keeps the choice; otherwise a dialog says what moves and
that the clusters get the moved tenants again, and only its confirmation moves them."""

import re

import pytest
from playwright.sync_api import expect

from provisioning.models import ProvisioningIntent
from tenants import services
from tenants.models import AuditEvent, ResourcePool, Tenant
from tests.browser.conftest import sign_in
from tests.tenants.builders import build_k8s_world, spec

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def paths(*tenants: Tenant) -> list[str]:
    return [Tenant.objects.get(pk=t.pk).name_path for t in tenants]


def pick(page, label: str) -> None:
    page.select_option("#id_parent", label=label)
    page.click("main form button:has-text('Move…')")


def test_a_platform_admin_moves_a_subtree_after_seeing_what_moves(page, platform_admin):
    w = build_k8s_world(platform_admin)
    pool = services.pool_update(
        acting_user=platform_admin, pool=ResourcePool.objects.get(pk=w.pool.pk), gpu_capacity=5
    )
    interns = services.tenant_create(acting_user=platform_admin, parent=w.dev1, name="interns")
    department2 = services.tenant_create(
        acting_user=platform_admin, parent=None, name="department2", allocations=[spec(pool, gpu=2)]
    )
    busy = services.tenant_create(
        acting_user=platform_admin, parent=department2, name="busy", allocations=[spec(pool, gpu=2)]
    )
    sign_in(page, platform_admin.username)

    page.goto(f"/tenants/{w.dev1.pk}/")
    page.click(".tenant-head a:has-text('Move…')")
    expect(page).to_have_url(re.compile(rf"/tenants/{w.dev1.pk}/move/$"))
    expect(page.locator("h1")).to_have_text("Move department1/dev1")
    expect(page.locator("main")).to_contain_text(
        "department1/dev1 and its 1 sub-tenant (every level below it)"
    )
    # Never itself, below it, or where it is; never a leaf. Level 1 for a platform admin. (The
    # `default` tenant is gone after an earlier live-server test's flush: pytest-django restores
    # the migrations' rows only in some orders.)
    default = ["default"] if Tenant.objects.filter(depth=1, name=Tenant.DEFAULT_NAME).exists() else []
    assert page.locator("#id_parent option").all_inner_texts() == [
        "— choose where it goes —",
        "Level 1 (no parent)",
        *default,
        "department1/dev2",
        "department2",
        "department2/busy",
    ]
    dialog = page.locator("dialog#move-dialog")

    # department2's sub-tenant holds both its GPUs: refused on the picker, the choice kept.
    pick(page, "department2")
    expect(page.locator("#err-parent")).to_contain_text("so 0 GPUs is left")
    expect(page.locator("#id_parent option:checked")).to_have_text("department2")
    expect(dialog).to_have_count(0)
    assert paths(w.dev1, interns) == ["department1/dev1", "department1/dev1/interns"]

    # busy has 2 GPUs and no sub-tenants: the dialog says what moves and what the clusters get.
    pick(page, "department2/busy")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.getElementById('move-dialog').matches(':modal')")
    cancel, confirm = (dialog.locator(f"button:has-text('{text}')") for text in ("Cancel", "Move 2 tenants"))
    assert cancel.bounding_box()["y"] == confirm.bounding_box()["y"]  # side by side, Cancel first
    assert cancel.bounding_box()["x"] < confirm.bounding_box()["x"]
    expect(dialog.locator("h2")).to_have_text(
        "Move department1/dev1 and its 1 sub-tenant to department2/busy?"
    )
    expect(dialog).to_contain_text("department1/dev1 becomes department2/busy/dev1")
    expect(dialog).to_contain_text("its 1 sub-tenant, at every level, moves with it")
    expect(dialog).to_contain_text("Canopy pushes the 2 tenants to every cluster again.")
    expect(dialog).to_contain_text("each namespace keeps its name")
    expect(dialog).to_contain_text("YARN: the queues are made again under department2/busy's queue")
    assert paths(w.dev1, interns) == ["department1/dev1", "department1/dev1/interns"]  # asking moved nothing

    dialog.locator("button:has-text('Cancel')").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#id_parent option:checked")).to_have_text("department2/busy")
    assert paths(w.dev1) == ["department1/dev1"]

    page.click("main form button:has-text('Move…')")
    moved_before = ProvisioningIntent.objects.filter(reason="TENANT_MOVED").count()
    dialog.locator("button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text(
        "department1/dev1 is now department2/busy/dev1; Canopy is pushing the change to the clusters."
    )
    expect(page).to_have_url(re.compile(rf"/tenants/{w.dev1.pk}/$"))
    expect(page.locator("[data-tenant='department2/busy/dev1']")).to_be_visible()
    assert paths(w.dev1, interns) == ["department2/busy/dev1", "department2/busy/dev1/interns"]
    assert AuditEvent.objects.filter(action="TENANT_MOVED", tenant_id=w.dev1.pk).count() == 1
    # The moved tenants and both parents go to the clusters again.
    pushed = set(ProvisioningIntent.objects.filter(reason="TENANT_MOVED").values_list("tenant_id", flat=True))
    assert ProvisioningIntent.objects.filter(reason="TENANT_MOVED").count() > moved_before
    assert {w.dev1.pk, interns.pk, busy.pk, w.department1.pk} <= pushed


def test_a_tenant_admin_moves_within_what_they_administer(page, platform_admin):
    w = build_k8s_world(platform_admin)
    team = services.tenant_create(acting_user=platform_admin, parent=w.department1, name="team")
    sign_in(page, w.people.dept_admin.username)

    # Their own top tenant is set from above: no Move.
    page.goto(f"/tenants/{w.department1.pk}/")
    expect(page.locator(".tenant-head a:has-text('Move…')")).to_have_count(0)
    assert page.goto(f"/tenants/{w.department1.pk}/move/").status == 404
    page.console_errors.expect(rf"status of 404 .*/tenants/{w.department1.pk}/move/\)")

    page.goto(f"/tenants/{w.dev1.pk}/")
    page.click(".tenant-head a:has-text('Move…')")
    # Only what they administer, and no level 1.
    assert page.locator("#id_parent option").all_inner_texts() == [
        "— choose where it goes —",
        "department1/dev2",
        "department1/team",
    ]
    # dev2's CPU is limited and dev1's is not: refused, the choice kept.
    pick(page, "department1/dev2")
    expect(page.locator("#err-parent")).to_contain_text("cannot be unlimited")
    expect(page.locator("#id_parent option:checked")).to_have_text("department1/dev2")
    # team has no allocation in the pool: refused too.
    pick(page, "department1/team")
    expect(page.locator("#err-parent")).to_contain_text("gpu-cluster/default")
    assert paths(w.dev1) == ["department1/dev1"]

    # A tenant without allocations moves anywhere they administer.
    page.goto(f"/tenants/{team.pk}/move/")
    pick(page, "department1/dev1")
    dialog = page.locator("dialog#move-dialog")
    expect(dialog.locator("h2")).to_have_text("Move department1/team to department1/dev1?")
    expect(dialog).to_contain_text("Canopy pushes department1/team to every cluster again.")
    dialog.locator("button:has-text('Move team')").click()
    expect(page.locator(".messages")).to_contain_text("department1/team is now department1/dev1/team")
    assert paths(team) == ["department1/dev1/team"]

    # Someone who administers only dev1 cannot move it (nor reach the page).
    page.context.clear_cookies()
    sign_in(page, w.people.dev1_admin.username)
    page.goto(f"/tenants/{w.dev1.pk}/")
    expect(page.locator(".tenant-head a:has-text('Move…')")).to_have_count(0)
    assert page.goto(f"/tenants/{w.dev1.pk}/move/").status == 404
    page.console_errors.expect(rf"status of 404 .*/tenants/{w.dev1.pk}/move/\)")
