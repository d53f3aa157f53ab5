from django.urls import path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from quotas import views

app_name = "quotas"

urlpatterns = [
    path("requests/", views.quota_requests, name="requests"),
    path("requests/new/", views.quota_request_create, name="request_create"),
    path("requests/<id:pk>/", views.quota_request_detail, name="request"),
    path("requests/<id:pk>/decide/", views.quota_request_decide, name="request_decide"),
    path("requests/<id:pk>/withdraw/", views.quota_request_withdraw, name="request_withdraw"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/read/", views.inbox_read, name="inbox_read"),
    path("inbox/unread/", views.inbox_badge, name="inbox_badge"),
]
