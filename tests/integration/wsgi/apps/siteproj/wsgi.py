"""siteproj.wsgi:application: Django's WSGIHandler, here behind wsgiref.validate's
checks (validated_application) as the tests serve it."""
import os
from wsgiref.validate import validator

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siteproj.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
validated_application = validator(application)
