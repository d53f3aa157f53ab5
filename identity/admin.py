"""Django's own user and group admin pages, with the names checked as everywhere else: a user or
group name must be usable on the clusters (tenants.cluster_names), or a role given to it later
would be written into YARN and HDFS ACLs and Kubernetes bindings as syntax."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from tenants.cluster_names import name_problem

User = get_user_model()


def _checked(form: forms.ModelForm, field: str, value: Any) -> Any:
    if (form.instance.pk is None or field in form.changed_data) and (problem := name_problem(value or "")):
        raise ValidationError(problem)
    return value


class UserCreationFormChecked(AdminUserCreationForm):
    def clean_username(self) -> Any:
        return _checked(self, "username", super().clean_username())


class UserChangeFormChecked(UserChangeForm):
    def clean_username(self) -> Any:
        return _checked(self, "username", self.cleaned_data.get("username"))


class GroupFormChecked(forms.ModelForm):
    class Meta:
        model = Group
        fields = ["name", "permissions"]

    def clean_name(self) -> Any:
        return _checked(self, "name", self.cleaned_data.get("name"))


class UserAdmin(auth_admin.UserAdmin):
    add_form = UserCreationFormChecked
    form = UserChangeFormChecked


class GroupAdmin(auth_admin.GroupAdmin):
    form = GroupFormChecked


admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.register(User, UserAdmin)
admin.site.register(Group, GroupAdmin)
