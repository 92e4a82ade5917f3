# The planner/generator arrays (`*.plan.bin`, `*.gen.bin`) were read by nothing; their lengths go with them.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0003_run_fields"),
    ]

    operations = [
        migrations.RemoveField(model_name="datasetbuild", name="gen_len"),
        migrations.RemoveField(model_name="datasetbuild", name="plan_len"),
    ]
