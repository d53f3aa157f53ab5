"""The `id` path converter: every row id in a URL, console and API alike (`<id:pk>`).

An id is up to 19 digits and at most the largest id a row can have (BigAutoField: 2**63 - 1).
Anything else matches no URL, so it is a 404 like an id that names nothing, and never reaches a
query: SQLite cannot even compare a larger number with a column (OverflowError, a 500).
"""

from django.urls import register_converter

LARGEST_ID = 2**63 - 1


def out_of_range(value: str) -> bool:
    """Digits that name no row whatever the table: larger than any id can be."""
    return value.isdecimal() and (len(value) > len(str(LARGEST_ID)) or int(value) > LARGEST_ID)


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        if out_of_range(value):
            raise ValueError(f"{value} is larger than any id")  # Django: this URL does not match
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)


register_converter(IdConverter, "id")
