from django.urls import path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from tenants import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("tenants/", views.tenant_resources, name="tenants"),
    path("tenants/new/", views.tenant_create, name="tenant_create"),
    path("tenants/<id:pk>/", views.tenant_resources, name="tenant"),
    path("tenants/<id:pk>/children/", views.tenant_tree_children, name="tenant_tree_children"),
    path("tenants/<id:pk>/allocations/", views.tenant_allocations, name="tenant_allocations"),
    path("allocation-grants/<id:pk>/end/", views.allocation_grant_end, name="allocation_grant_end"),
    path("allocation-grants/<id:pk>/cancel/", views.allocation_grant_cancel, name="allocation_grant_cancel"),
    path("tenants/<id:pk>/plan/", views.tenant_plan, name="tenant_plan"),
    path("tenants/<id:pk>/state/", views.tenant_state, name="tenant_state"),
    path("tenants/<id:pk>/move/", views.tenant_move, name="tenant_move"),
    path("tenants/<id:pk>/delete/", views.tenant_delete, name="tenant_delete"),
    path("tenants/<id:pk>/members/", views.membership_add, name="membership_add"),
    path("tenants/<id:pk>/services/", views.tenant_service_add, name="tenant_service_add"),
    path("tenant-services/<id:pk>/remove/", views.tenant_service_remove, name="tenant_service_remove"),
    path("tenants/<id:pk>/members/choices/", views.member_choices, name="member_choices"),
    path("memberships/<id:pk>/role/", views.membership_change, name="membership_change"),
    path("memberships/<id:pk>/remove/", views.membership_remove, name="membership_remove"),
    path("pools/", views.pools, name="pools"),
    path("pools/<id:pk>/", views.pool_edit, name="pool_edit"),
    path("pools/<id:pk>/delete/", views.pool_delete, name="pool_delete"),
    path("clusters/new/", views.cluster_create, name="cluster_create"),
    path("clusters/<id:pk>/", views.cluster_edit, name="cluster_edit"),
    path("clusters/<id:pk>/delete/", views.cluster_delete, name="cluster_delete"),
    path("clusters/<id:pk>/pools/new/", views.pool_create, name="pool_create"),
    path("plans/", views.plans, name="plans"),
    path("plans/new/", views.plan_edit, name="plan_create"),
    path("plans/<id:pk>/", views.plan_edit, name="plan_edit"),
    path("users/", views.users, name="users"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/grant/", views.user_grant, name="user_grant"),
    path("users/<id:pk>/password/", views.user_password, name="user_password"),
    path("audit/", views.audit, name="audit"),
    path("audit.csv", views.audit_csv, name="audit_csv"),
    path("me/", views.my_access, name="my_access"),
]
