"""The site app: roles, the home and System pages, and the command that starts everything."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_role_groups(sender, **kwargs):
    from hrgc_site.roles import ensure_groups

    ensure_groups()


class HrgcSiteConfig(AppConfig):
    name = "hrgc_site"
    verbose_name = "HRGC"

    def ready(self):
        post_migrate.connect(_create_role_groups, sender=self)
