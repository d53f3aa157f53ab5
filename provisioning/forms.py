"""Console forms for provisioning's parts of the pages. Like the tenants' forms they only parse
input; `provisioning.services` checks the rules."""

from __future__ import annotations

from django import forms

from provisioning.models import KubernetesConnection


class QuotaEngineForm(forms.Form):
    """How a connected Kubernetes cluster enforces allocations (`KubernetesConnection.quota_engine`)."""

    quota_engine = forms.ChoiceField(
        label="Quota engine",
        choices=KubernetesConnection.QuotaEngine.choices,
        help_text="Kueue needs every pool's node selector as key=value labels. Changing it pushes every "
        "tenant on the cluster again.",
    )
