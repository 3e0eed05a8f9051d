"""The webhook event store's table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="WebhookEvent",
            fields=[
                (
                    "event_id",
                    models.CharField(max_length=255, primary_key=True, serialize=False),
                ),
                ("lease_until", models.FloatField(null=True)),
                ("completed_at", models.FloatField(db_index=True, null=True)),
            ],
            options={"db_table": "lattice_stripe_webhook_event"},
        ),
    ]
