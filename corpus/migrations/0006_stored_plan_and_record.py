# Plans and record parts are computed once at ingest and stored; rows from before get them on first
# use or from `manage.py rejudge_duplicates` (record_format 0 = not computed yet).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0005_graphql_clones_budget"),
    ]

    operations = [
        migrations.AddField(
            model_name="pullrequest",
            name="plan",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="pullrequest",
            name="record_parts",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="snapshot",
            name="record_format",
            field=models.PositiveSmallIntegerField(db_default=1, default=1, editable=False),
        ),
        migrations.AddField(
            model_name="pullrequest",
            name="record_format",
            field=models.PositiveSmallIntegerField(db_default=0, default=0, editable=False),
        ),
    ]
