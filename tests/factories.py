"""factory_boy factories for rows that have no domain rules of their own (users). Domain rows are
built through the services (tests/tenants/builders.py) so tests never hold data the product could
not have made."""

import factory
from django.contrib.auth import get_user_model

PASSWORD = "not-a-secret-1"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy passes the object first
        if create:
            obj.save()
