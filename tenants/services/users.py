"""Users (platform admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.audit import audit, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.cluster_names import name_problem
from tenants.permissions import AnyUser, require_platform_admin

if TYPE_CHECKING:
    from django.contrib.auth.models import User
else:
    User = get_user_model()


USER_FIELDS = ("username", "email", "first_name", "last_name", "is_staff", "is_active")


def user_create(
    *,
    acting_user: AnyUser,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
) -> User:
    require_platform_admin(acting_user)
    if problem := name_problem(username):
        raise ValidationError({"username": [problem]})
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, is_staff=is_staff)
    user.full_clean(exclude=["password"])
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    with transaction.atomic():
        audited_save(user, acting_user=acting_user, action="USER_CREATED", tenant=None, after=USER_FIELDS)
    return user


def user_update(*, acting_user: AnyUser, user: User, **changes: Any) -> User:
    require_platform_admin(acting_user)
    unknown = set(changes) - set(USER_FIELDS) - {"password"}
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in unknown})
    if user.pk == acting_user.pk and (changes.get("is_staff") is False or changes.get("is_active") is False):
        raise ValidationError(
            {"is_staff": ["You cannot remove your own platform admin rights or deactivate yourself."]}
        )
    password = changes.pop("password", None)
    renamed = "username" in changes and changes["username"] != user.get_username()
    if renamed and (problem := name_problem(changes["username"])):
        raise ValidationError({"username": [problem]})
    with transaction.atomic():
        before = snapshot(user, USER_FIELDS)
        for name, value in changes.items():
            setattr(user, name, value)
        user.full_clean(exclude=["password"])
        if password:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from exc
            user.set_password(password)
        user.save()
        after = snapshot(user, USER_FIELDS)
        if password:
            after["password"] = "reset"  # nosec B105 # the audit row says a password was reset, never which
        audit(
            acting_user=acting_user,
            action="USER_UPDATED",
            target=user,
            tenant=None,
            before=before,
            after=after,
        )
        # Service accounts follow people.
        change_record(TenantChange(users=[user], reason="USER_UPDATED"))
    return user
