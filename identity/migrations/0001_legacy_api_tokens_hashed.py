"""DRF's authtoken app kept API tokens in clear (table authtoken_token). Each one becomes a knox
token stored as its digest, with the same key and knox's lifetime, so clients keep working until
then; the clear-text table goes."""

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings

LEGACY_TABLE = "authtoken_token"


def hash_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    auth_token = apps.get_model("knox", "AuthToken")
    ttl = knox_settings.TOKEN_TTL
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id FROM authtoken_token")
        rows = cursor.fetchall()
    auth_token.objects.bulk_create(
        auth_token(
            digest=hash_token(key),
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            user_id=user_id,
            expiry=timezone.now() + ttl if ttl else None,
        )
        for key, user_id in rows
    )
    schema_editor.execute("DROP TABLE authtoken_token")
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [("knox", "0009_extend_authtoken_field")]

    operations = [migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop)]
