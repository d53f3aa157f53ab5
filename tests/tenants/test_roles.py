"""tenants.roles: one order (admin > member > viewer, the strongest wins) and one reach (an admin's
role holds on the subtree, a member's or a viewer's on the tenant alone)."""

import pytest

from tenants import roles
from tenants.models import Membership


def test_the_roles_are_the_memberships_roles_in_one_order():
    assert Membership.Role is roles.Role
    assert sorted(roles.Role.values, key=roles.rank) == ["viewer", "member", "admin"]
    assert roles.strongest(["viewer", "admin", "member"]) == "admin"
    assert roles.strongest(["viewer", "member"]) == "member"
    assert roles.at_least("admin", "member") and roles.at_least("member", "member")
    assert not roles.at_least("viewer", "member")
    with pytest.raises(ValueError):
        roles.rank("owner")


@pytest.mark.parametrize(
    ("role", "granted", "path", "reaches"),
    [
        ("admin", "0001", "0001", True),
        ("admin", "0001", "00010002", True),  # below: an admin's reach
        ("admin", "00010002", "0001", False),  # never above
        ("admin", "0001", "0002", False),
        ("member", "0001", "0001", True),
        ("member", "0001", "00010002", False),
        ("viewer", "0001", "00010002", False),
    ],
)
def test_an_admins_role_reaches_the_subtree_the_others_the_tenant_alone(role, granted, path, reaches):
    assert roles.reaches(role, granted, path) is reaches
    assert roles.reaches_below(role) is (role == "admin")
