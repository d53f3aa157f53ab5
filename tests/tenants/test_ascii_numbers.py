"""Quantities and other amounts follow Kubernetes' grammar exactly: ASCII digits, an ASCII sign, the
suffixes; digits of other scripts, look-alike signs and Unicode spaces are each a clear field error
(issue 15, point 9), in the parser, the API, the console's forms and the Django admin."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest
from django.test import Client

from tenants import quantities
from tenants.models import Allocation, ResourcePool, Tenant

# Each is a Unicode look-alike of something Kubernetes accepts; the character named in the error.
LOOK_ALIKES = [
    ("٢Ti", "٢"),  # ARABIC-INDIC DIGIT TWO
    ("１２", "１"),  # FULLWIDTH DIGIT ONE
    ("۸", "۸"),  # EXTENDED ARABIC-INDIC DIGIT EIGHT
    ("८", "८"),  # DEVANAGARI DIGIT EIGHT
    ("๘", "๘"),  # THAI DIGIT EIGHT
    ("𝟠", "𝟠"),  # MATHEMATICAL DOUBLE-STRUCK DIGIT EIGHT
    ("²", "²"),  # SUPERSCRIPT TWO
    ("1٫5", "٫"),  # ARABIC DECIMAL SEPARATOR
    ("8\u00a0", "\u00a0"),  # NO-BREAK SPACE after
    ("\u20038", "\u2003"),  # EM SPACE before
    ("\u30008", "\u3000"),  # IDEOGRAPHIC SPACE before
    ("8\u2009Gi", "\u2009"),  # THIN SPACE inside
    ("8\u200b", "\u200b"),  # ZERO WIDTH SPACE
    ("\u22128", "\u2212"),  # MINUS SIGN
    ("＋8", "＋"),  # FULLWIDTH PLUS SIGN
    ("8Ｇi", "Ｇ"),  # FULLWIDTH LATIN CAPITAL LETTER G
    ("8Gі", "і"),  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    ("\u3000", "\u3000"),  # an ideographic space alone was "unlimited"
]
IDS = [unicodedata.name(char, repr(char)) for _, char in LOOK_ALIKES]


def named(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char)}"


@pytest.mark.parametrize(("value", "char"), LOOK_ALIKES, ids=IDS)
@pytest.mark.parametrize(
    "parse", [quantities.parse_count, quantities.parse_cpu_millicores, quantities.parse_memory_bytes]
)
def test_the_parser_refuses_each_look_alike_and_names_the_character(parse, value, char):
    assert not quantities.is_unlimited(value)
    with pytest.raises(quantities.QuantityError) as refused:
        parse(value)
    assert named(char) in str(refused.value) and "ASCII digits 0-9" in str(refused.value)


@pytest.mark.parametrize(("value", "expected"), [(" 8 ", 8), ("\t8\n", 8), ("+8", 8)])
def test_ascii_white_space_around_and_an_ascii_sign_are_still_fine(value, expected):
    assert quantities.parse_count(value) == expected


@pytest.mark.parametrize("value", [" unlimited ", "UNLIMITED", "", "  "])
def test_unlimited_is_the_ascii_word_or_nothing(value):
    assert quantities.is_unlimited(value)


def test_a_trailing_newline_is_no_longer_hidden_by_the_pattern():
    """`$` matched before a final newline; `fullmatch` does not (the newline is ASCII space and is
    trimmed, but one inside is refused)."""
    with pytest.raises(quantities.QuantityError):
        quantities.parse_count("8\n0")


@pytest.mark.django_db
@pytest.mark.parametrize(("value", "char"), LOOK_ALIKES, ids=IDS)
def test_the_api_answers_each_look_alike_with_a_field_error(api, k8s_world, value, char):
    w = k8s_world
    response = api.as_user(w.admin).post(
        "/api/v1/tenants/",
        {"parent": w.department1.pk, "name": "dev3", "allocations": [{"pool": w.pool.pk, "memory": value}]},
        format="json",
    )
    assert response.status_code == 400, response.content
    [message] = response.json()["allocations"]["0"]["memory"]
    assert named(char) in message
    assert not Tenant.objects.filter(name="dev3").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["٤٠", "４０", "40\u00a0"])
def test_the_api_refuses_a_look_alike_percentage(api, yarn_world, value):
    w = yarn_world
    response = api.as_user(w.admin).post(
        "/api/v1/tenants/",
        {"parent": None, "name": "t4", "allocations": [{"pool": w.highmem.pk, "capacity": value}]},
        format="json",
    )
    assert response.status_code == 400, response.content
    [message] = response.json()["allocations"]["0"]["capacity"]
    assert "is not a percentage" in message


@pytest.mark.django_db
@pytest.mark.parametrize(("value", "char"), LOOK_ALIKES, ids=IDS)
def test_the_console_form_shows_each_look_alike_on_its_field(k8s_world, value, char):
    w = k8s_world
    browser = Client()
    browser.force_login(w.admin)
    field = f"pool_{w.pool.pk}_gpu"
    response = browser.post(
        "/tenants/new/",
        {
            "parent": w.department1.pk,
            "name": "dev3",
            "is_leaf": "true",
            f"pool_{w.pool.pk}_on": "on",
            field: value,
        },
    )
    assert response.status_code == 200
    [message] = response.context["form"].errors[field]
    assert named(char) in message
    assert not Tenant.objects.filter(name="dev3").exists()


@pytest.mark.django_db
def test_the_console_refuses_a_look_alike_percentage_and_file_count(yarn_world):
    w = yarn_world
    browser = Client()
    browser.force_login(w.admin)
    form = {
        "name": "t4",
        "is_leaf": "true",
        f"pool_{w.highmem.pk}_on": "on",
        f"pool_{w.highmem.pk}_capacity": "٤٠",
    }
    errors = browser.post("/tenants/new/", form).context["form"].errors
    assert "is not a percentage" in errors[f"pool_{w.highmem.pk}_capacity"][0]
    files = f"hdfs_{w.cluster.pk}_files"
    errors = (
        browser.post(
            "/tenants/new/", {"name": "t4", "is_leaf": "true", f"hdfs_{w.cluster.pk}_on": "on", files: "١٠"}
        )
        .context["form"]
        .errors
    )
    assert "is not a number" in errors[files][0]
    assert not Tenant.objects.filter(name="t4").exists()


@pytest.mark.django_db
def test_the_django_admin_refuses_a_look_alike_capacity(k8s_world):
    w = k8s_world
    browser = Client()
    browser.force_login(w.admin)
    response = browser.post(
        "/admin/tenants/resourcepool/add/",
        {
            "cluster": w.cluster.pk,
            "name": "extra",
            "node_selector": "",
            "gpu_capacity": "١٢",
            "cpu_capacity_millicores": "0",
            "memory_capacity_bytes": "0",
        },
    )
    assert response.status_code == 200
    assert named("١") in " ".join(response.context["adminform"].form.errors["gpu_capacity"])
    assert not ResourcePool.objects.filter(name="extra").exists()


@pytest.mark.django_db
def test_ascii_amounts_still_work_everywhere(api, k8s_world):
    w = k8s_world
    response = api.as_user(w.admin).post(
        "/api/v1/tenants/",
        {
            "parent": w.department1.pk,
            "name": "dev3",
            "allocations": [{"pool": w.pool.pk, "gpu": " 0 ", "cpu": "\t1", "memory": " 4Gi "}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert Allocation.objects.get(tenant__name="dev3").memory_bytes == 4 * 2**30
    assert quantities.parse_count(Decimal("2")) == 2
