"""Give past chain values written before they kept when they were overtaken that time.

Without it such an entry would always count as a copy; with the migration's time, a
superseded QR code made before the upgrade is out of date, as it would have been.
"""

from django.db import migrations
from django.utils import timezone


def add_overtaken_at(apps, schema_editor) -> None:
    binding_model = apps.get_model("authority", "Binding")
    now = timezone.now().isoformat()
    for binding in binding_model.objects.iterator():
        entries = [
            [*entry[:2], now] if len(entry) < 3 else entry for entry in binding.chain_past
        ]
        if entries != binding.chain_past:
            binding.chain_past = entries
            binding.save(update_fields=["chain_past"])


class Migration(migrations.Migration):
    dependencies = [("authority", "0009_binding_no_recent_nonces")]

    operations = [migrations.RunPython(add_overtaken_at, migrations.RunPython.noop)]
