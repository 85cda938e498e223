"""Bayleaf as a Django app.

With "bayleaf" in INSTALLED_APPS, before django.contrib.staticfiles::

    INSTALLED_APPS = ["bayleaf", ..., "django.contrib.staticfiles", "channels", ...]

``manage.py runserver [addrport]`` serves settings.ASGI_APPLICATION with the
bayleaf binary (static files under DEBUG, autoreload; --noreload, --nostatic,
--insecure, -v, and --noasgi for Django's WSGI server; see
bayleaf.management.commands.runserver), and bayleaf.testing offers
BayleafLiveServerTestCase for Channels live-server tests.

The package must be importable by the project's Python: pip installs it into
site-packages; from a source tree put pyapp/ on PYTHONPATH.  The binary is
$BAYLEAF_BIN, else the build tree beside pyapp (../build/bayleaf), else the one
installed beside this Python or under the package's PREFIX/bin, else PATH.
"""

from django.apps import AppConfig
from django.core import checks


def check_runserver_order(app_configs=None, **kwargs):
    """Our runserver only wins if bayleaf comes before the other apps that ship one."""
    from django.apps import apps

    names = [config.name for config in apps.get_app_configs()]
    if "bayleaf" not in names:
        return []
    mine = names.index("bayleaf")
    problems = []
    if "django.contrib.staticfiles" in names[:mine]:
        problems.append(checks.Error(
            "'bayleaf' must come before 'django.contrib.staticfiles' in INSTALLED_APPS, "
            "otherwise runserver is not Bayleaf's.",
            hint="Move 'bayleaf' up in INSTALLED_APPS.",
            id="bayleaf.E001",
        ))
    if "daphne" in names[:mine]:
        problems.append(checks.Warning(
            "'daphne' comes before 'bayleaf' in INSTALLED_APPS: runserver runs Daphne.",
            hint="Remove 'daphne' from INSTALLED_APPS or move 'bayleaf' above it.",
            id="bayleaf.W001",
        ))
    return problems


class BayleafConfig(AppConfig):
    name = "bayleaf"
    verbose_name = "Bayleaf"

    def ready(self):
        checks.register(check_runserver_order)
