from django.db import migrations, models


def bind_existing_token(apps, schema_editor):
    """A token stored before this field existed is bound to the URL that was configured with it."""
    from django.conf import settings

    GitHubSettings = apps.get_model("corpus", "GitHubSettings")
    for row in GitHubSettings.objects.exclude(token=""):
        row.token_api_url = (row.api_url or settings.GITHUB_API_URL).rstrip("/")
        row.save(update_fields=["token_api_url"])


class Migration(migrations.Migration):
    dependencies = [("corpus", "0003_minhash_signature")]

    operations = [
        migrations.AddField(
            model_name="githubsettings",
            name="token_api_url",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.RunPython(bind_existing_token, migrations.RunPython.noop),
    ]
