"""Issue 18, point 8, in Chromium: the Members tab's picker finds people and groups as you type
(only those the reader may see), a name as typed that is refused comes back with an error and
loses nothing; a tenant admin is shown no form that only platform admins may submit."""

import pytest
from playwright.sync_api import expect

from tenants import services
from tenants.models import Membership
from tests.browser.conftest import pick_member, sign_in
from tests.tenants.builders import build_k8s_world, user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def world(platform_admin):
    w = build_k8s_world(platform_admin)
    services.user_update(acting_user=platform_admin, user=w.tom, first_name="Tom", last_name="Thumb")
    services.membership_grant(acting_user=platform_admin, tenant=w.dev2, group="ml-team", role="viewer")
    # Elsewhere: a tenant, a person and a group the department's admin cannot see.
    elsewhere = services.tenant_create(acting_user=platform_admin, parent=None, name="elsewhere")
    zoe = user("zoe", first_name="Zoe")
    services.membership_grant(acting_user=platform_admin, tenant=elsewhere, user=zoe, role="member")
    services.membership_grant(acting_user=platform_admin, tenant=elsewhere, group="ops-team", role="member")
    return w


def dropdown_values(page) -> set[str]:
    return set(
        page.locator("#add-member .ts-dropdown [data-value]").evaluate_all(
            "es => es.map(e => e.dataset.value)"
        )
    )


def test_picking_a_user_and_a_group_with_search_and_a_typo_kept_with_its_error(page, world):
    w = world
    sign_in(page, "dept-admin")
    page.goto(f"/tenants/{w.dev1.pk}/?tab=members")
    add = page.locator("#add-member")

    # A person found by their full name, listed by the server as it is typed.
    pick_member(page, "thu", "user:tom")
    expect(add.locator(".ts-control .item")).to_have_text("tom")
    add.locator("select[name=role]").select_option("member")
    add.locator("button:has-text('Add member')").click()
    expect(page.locator(".messages")).to_contain_text("tom is now member of department1/dev1")
    assert Membership.objects.filter(tenant=w.dev1, user=w.tom, role="member").exists()

    # A group, under its own heading.
    pick_member(page, "ml", "group:ml-team")
    expect(add.locator(".ts-control .item")).to_contain_text("ml-team")
    add.locator("select[name=role]").select_option("viewer")
    add.locator("button:has-text('Add member')").click()
    expect(page.locator(".messages")).to_contain_text("Group ml-team is now viewer of department1/dev1")
    assert Membership.objects.filter(tenant=w.dev1, group__name="ml-team", role="viewer").exists()

    # Nobody the department's admin cannot see is offered, however it is searched for: only the
    # text itself, as typed.
    for typed, hidden in (("zo", "user:zoe"), ("ops", "group:ops-team")):
        add.locator(".ts-control").click()
        add.locator(".ts-control input").fill(typed)
        expect(add.locator(f".ts-dropdown [data-value='group:{typed}']")).to_be_visible()
        page.wait_for_load_state("networkidle")  # the server has answered
        assert dropdown_values(page) >= {f"user:{typed}", f"group:{typed}"}
        assert hidden not in dropdown_values(page)
        add.locator(".ts-control input").press("Escape")

    # A typo, given as typed: refused under the picker, which still holds it, the role kept.
    pick_member(page, "dev2-admn", "user:dev2-admn")
    add.locator("select[name=role]").select_option("admin")
    add.locator("button:has-text('Add member')").click()
    expect(page.locator("#err-member")).to_have_text("There is no active user named dev2-admn.")
    expect(add.locator(".ts-control .item")).to_have_text("dev2-admn")
    expect(add.locator("select[name=role]")).to_have_value("admin")
    assert not Membership.objects.filter(tenant=w.dev1, role="admin", user__username="dev2-admn").exists()

    # Corrected from the list (what was typed is still there, as typed, among the users): granted,
    # with the role chosen before.
    add.locator(".ts-control").click()
    add.locator(".ts-control input").fill("dev2-ad")
    expect(add.locator(".optgroup[data-group='user'] [data-value='user:dev2-admn']")).to_contain_text(
        "as typed"
    )
    pick_member(page, "dev2-ad", "user:dev2-admin")
    expect(add.locator(".ts-control .item")).to_have_text("dev2-admin")
    add.locator("button:has-text('Add member')").click()
    expect(page.locator(".messages")).to_contain_text("dev2-admin is now admin of department1/dev1")
    assert Membership.objects.filter(tenant=w.dev1, user=w.people.dev2_admin, role="admin").exists()


PLATFORM_ONLY = ("/users/new/", "/plans/new/", "/clusters/", "/password/", "/revoke-tokens/")


def post_form_actions(page) -> list[str]:
    return page.locator("form[method=post]").evaluate_all("fs => fs.map(f => f.action)")


def test_a_tenant_admin_sees_no_platform_only_forms(page, world):
    w = world
    sign_in(page, "dept-admin")
    for url in ("/users/", "/pools/", "/plans/", f"/tenants/{w.department1.pk}/", f"/tenants/{w.dev1.pk}/"):
        page.goto(url)
        actions = post_form_actions(page)
        assert not [a for a in actions if any(part in a for part in PLATFORM_ONLY)], (url, actions)
    page.goto("/users/")
    expect(page.locator("a:has-text('New user')")).to_have_count(0)
    expect(page.locator("text=Reset password")).to_have_count(0)
    expect(page.locator("button:has-text('Revoke API tokens')")).to_have_count(0)
    expect(page.locator("#grant-role")).to_be_visible()  # what they may do: grant roles in their subtree
    page.goto("/plans/")
    expect(page.locator("a:has-text('New plan')")).to_have_count(0)
    # department1's own allocation is set from above: not theirs to change.
    page.goto(f"/tenants/{w.department1.pk}/")
    expect(page.locator("a:has-text('Edit allocations')")).to_have_count(0)
    expect(page.locator("a:has-text('Add sub-tenant')").first).to_be_visible()

    # The platform's own forms are refused before they are shown.
    for url in ("/users/new/", f"/users/{w.bob.pk}/password/"):
        assert page.goto(url).status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")
        expect(page.locator("form[method=post] input[name=is_staff], input[name=password]")).to_have_count(0)
        page.console_errors.expect(rf"status of 403 .*{url}\)")

    # A platform admin has them.
    page.goto("/accounts/login/")
    page.context.clear_cookies()
    sign_in(page, w.admin.username)
    page.goto("/users/")
    page.click("a:has-text('New user')")
    expect(page.locator("input[name=is_staff]")).to_be_visible()
