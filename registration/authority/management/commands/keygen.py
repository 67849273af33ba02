from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from registration.protocol.keys import generate_key_pair_files


class Command(BaseCommand):
    help = (
        "Create the vendor's key pairs for KID in DIR: an Ed25519 pair that signs licenses "
        "and an X25519 pair the verification service uses. Private key files are written "
        "with mode 0600 and never overwritten. Prints the public keys in the form the "
        "settings take (LICENSE_PUBLIC_KEYS, AUTHORITY_PUBLIC_KEYS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kid", required=True, help="key id, e.g. vendor-2026")
        parser.add_argument("--out", required=True, type=Path, help="directory for the key files")

    def handle(self, *args, kid: str, out: Path, **options):
        try:
            public = generate_key_pair_files(out, kid)
        except (ValueError, FileExistsError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"LICENSE_PUBLIC_KEYS={kid}={public['ed25519']}")
        self.stdout.write(f"AUTHORITY_PUBLIC_KEYS={kid}={public['x25519']}")
        self.stdout.write(f"AUTHORITY_PRIVATE_KEY_FILES={kid}={out / (kid + '.x25519.pem')}")
        self.stdout.write(f"LICENSE_SIGNING_KEY_FILES={kid}={out / (kid + '.ed25519.pem')}")
