"""The console's pages. Every read goes through `tenants.selectors` with the signed-in user, every
write through `tenants.services`; a tenant the user cannot see is a 404 here as in the API.

One template serves a page and its HTMX fragments: `render_page` renders the named partial of the
page's own template when the request comes from HTMX (`page.html#partial`), the whole page otherwise.

One module per screen (the tenant tree and page, its edits, allocations, members, pools, plans,
users, audit, my access); `_page` renders pages and fragments, `_trials` runs services as dry runs
for the forms. Every view is re-exported here for `tenants/urls.py`.
"""

from tenants.views._page import (
    render_page,
)
from tenants.views._trials import (
    service_trial,
)
from tenants.views.allocation_edit import (
    allocation_grant_cancel,
    allocation_grant_end,
    tenant_allocations,
)
from tenants.views.audit_page import (
    audit,
    audit_csv,
)
from tenants.views.cluster_pages import (
    answered,
    cluster_create,
    cluster_delete,
    cluster_edit,
    cluster_on_pools_page,
    deleted,
    deletion_confirmation,
    platform_admins_only,
    pool_create,
    pool_delete,
    pool_edit,
)
from tenants.views.member_edit import (
    member_choices,
    membership_add,
    membership_change,
    membership_remove,
)
from tenants.views.my_access_page import (
    my_access,
)
from tenants.views.plan_pages import (
    plan_edit,
    plans,
    tenant_plan,
)
from tenants.views.pool_page import (
    pools,
    pools_page,
)
from tenants.views.service_pages import (
    tenant_service_add,
    tenant_service_remove,
)
from tenants.views.tenant_edit import (
    tenant_create,
    tenant_delete,
    tenant_move,
    tenant_state,
)
from tenants.views.tenant_page import (
    TABS,
    Bar,
    home,
    tenant_page,
    tenant_resources,
    tenant_tabs,
    tenant_tree_children,
)
from tenants.views.user_pages import (
    user_create,
    user_grant,
    user_password,
    users,
)

__all__ = [
    "Bar",
    "TABS",
    "answered",
    "audit",
    "audit_csv",
    "cluster_create",
    "cluster_delete",
    "cluster_edit",
    "cluster_on_pools_page",
    "deleted",
    "deletion_confirmation",
    "home",
    "member_choices",
    "membership_add",
    "membership_change",
    "membership_remove",
    "my_access",
    "plan_edit",
    "plans",
    "platform_admins_only",
    "pool_create",
    "pool_delete",
    "pool_edit",
    "pools",
    "pools_page",
    "render_page",
    "service_trial",
    "tenant_allocations",
    "allocation_grant_end",
    "allocation_grant_cancel",
    "tenant_create",
    "tenant_delete",
    "tenant_move",
    "tenant_page",
    "tenant_plan",
    "tenant_resources",
    "tenant_service_add",
    "tenant_service_remove",
    "tenant_state",
    "tenant_tabs",
    "tenant_tree_children",
    "user_create",
    "user_grant",
    "user_password",
    "users",
]
