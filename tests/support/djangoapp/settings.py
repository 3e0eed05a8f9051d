"""Settings of the test project: real SQLite in a file (threads share it), the app installed."""

import os
import tempfile

SECRET_KEY = "django-insecure-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["shop.example", "testserver", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "djangoapp.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "lattice_stripe.contrib.django",
    "djangoapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
_DATABASE = os.path.join(tempfile.gettempdir(), f"lattice-stripe-django-{os.getpid()}")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _DATABASE + ".sqlite3",
        # A file, not the shared in-memory default: concurrent threads must see one database.
        "TEST": {"NAME": _DATABASE + "-test.sqlite3"},
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/login/"
STATIC_URL = "/static/"
AUTHENTICATION_BACKENDS = ["djangoapp.auth.StripeCustomerBackend"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LATTICE_STRIPE = {
    "API_KEY": "sk_test_DjangoTests",
    "WEBHOOK_SECRETS": ["whsec_old", "whsec_new"],
    "CUSTOMER_FOR": "djangoapp.billing.customer_for",
    "RETURN_URL": "account",
    "HANDLERS": {"customer.subscription.deleted": "djangoapp.billing.subscription_changed"},
}
