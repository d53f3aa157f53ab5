"""The Users page (platform admins): people, new users, passwords, roles granted from here."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from tenants import forms, selectors, services
from tenants.models import Membership
from tenants.permissions import Action, is_platform_admin, require_platform_admin

User = get_user_model()


# The grant form suggests this many tenant paths (tree order); any other is typed.
SUGGESTIONS = 500


@login_required
def users(request: HttpRequest) -> HttpResponse:
    return _users_page(request, forms.GrantForm(initial={"username": request.GET.get("q", "").strip()}))


def _users_page(request: HttpRequest, grant_form: forms.GrantForm) -> HttpResponse:
    """The Users page, with the grant form as given: empty, or refused with what was typed."""
    people = selectors.user_list(user=request.user)
    query = request.GET.get("q", "").strip()
    if query:
        people = people.filter(username__icontains=query)
    memberships = selectors.membership_list(user=request.user)
    page = Paginator(people, 50).get_page(request.GET.get("page"))
    roles: dict[int, list[Membership]] = {}
    people_ids = [person.pk for person in page.object_list]
    # Roles through groups count too: each group membership is listed under the group's people.
    people_of_group: dict[int | None, list[int]] = {}
    for person_id, group_id in selectors.user_groups_of(user=request.user, people_ids=people_ids):
        people_of_group.setdefault(group_id, []).append(person_id)
    for membership in memberships.filter(Q(user_id__in=people_ids) | Q(group_id__in=list(people_of_group))):
        for person_id in [membership.user_id] if membership.user_id else people_of_group[membership.group_id]:
            roles.setdefault(person_id, []).append(membership)
    rows = [{"person": person, "roles": roles.get(person.pk, [])} for person in page.object_list]
    return render(
        request,
        "tenants/users.html",
        {
            "nav": "users",
            "page": page,
            "rows": rows,
            "query": query,
            "is_platform_admin": is_platform_admin(request.user),
            "grant_form": grant_form,
            "grant_paths": list(
                selectors.tenant_list(user=request.user, action=Action.ADMINISTER).values_list(
                    "name_path", flat=True
                )[:SUGGESTIONS]
            ),
        },
    )


@login_required
def user_create(request: HttpRequest) -> HttpResponse:
    # Refused before any form is shown or read: only platform admins create users.
    require_platform_admin(request.user)
    form = forms.UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            person = services.user_create(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        else:
            messages.success(request, f"User {person.get_username()} created.")
            return redirect("console:users")
    return render(request, "tenants/user_form.html", {"nav": "users", "form": form, "title": "New user"})


@login_required
def user_password(request: HttpRequest, pk: int) -> HttpResponse:
    require_platform_admin(request.user)
    person = get_object_or_404(selectors.user_list(user=request.user), pk=pk)
    form = forms.PasswordResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(
                acting_user=request.user, user=person, password=form.cleaned_data["password"]
            )
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        else:
            messages.success(request, f"Password of {person.get_username()} reset.")
            return redirect("console:users")
    return render(
        request,
        "tenants/user_form.html",
        {"nav": "users", "form": form, "title": f"Reset the password of {person.get_username()}"},
    )


@login_required
@require_POST
def user_grant(request: HttpRequest) -> HttpResponse:
    """Give a user a role on a tenant named by its path, from the Users page. Platform admins grant
    anywhere; tenant admins within their subtrees (the service checks)."""
    form = forms.GrantForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        tenant = (
            selectors.tenant_list(user=request.user, action=Action.ADMINISTER)
            .filter(name_path=data["tenant"].strip("/"))
            .first()
        )
        person = selectors.user_to_grant(user=request.user, username=data["username"])
        if tenant is None:
            form.add_error("tenant", f"You administer no tenant with the path {data['tenant']}.")
        if person is None:
            form.add_error("username", f"There is no active user named {data['username']}.")
        if tenant is not None and person is not None:
            try:
                services.membership_grant(
                    acting_user=request.user, tenant=tenant, user=person, role=data["role"]
                )
            except ValidationError as exc:
                forms.apply_service_errors(form, exc, field_for={"user": "username"})
            else:
                messages.success(
                    request, f"{person.get_username()} is now {data['role']} of {tenant.name_path}."
                )
                return redirect(f"{reverse('console:users')}?{urlencode({'q': person.get_username()})}")
    # Refused: the page again with what was typed and why, on the fields it is about.
    return _users_page(request, form)
