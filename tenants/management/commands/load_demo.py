from django.core.management.base import BaseCommand

from tenants.demo import DEMO_USERS, load_demo


class Command(BaseCommand):
    help = "Load the source documents' scenarios (dev1/dev2 with Bob and Tom; t1/t2/t3 with users A/B/C)."

    def add_arguments(self, parser):
        parser.add_argument("--admin", default="admin", help="User name of the demo platform admin.")

    def handle(self, *args, **options):
        creds = load_demo(admin_username=options["admin"])
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write(f"  Platform admin:  {creds.admin_username} / {creds.admin_password}")
        self.stdout.write(f"  Demo users:      {', '.join(DEMO_USERS)} / {creds.user_password}")
        self.stdout.write("  (passwords are new on every run)")
