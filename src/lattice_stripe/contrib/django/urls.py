"""``path("billing/", include("lattice_stripe.contrib.django.urls"))``: the portal and webhook
views, named ``lattice_stripe:portal`` and ``lattice_stripe:webhook``.

For ASGI, include ``lattice_stripe.contrib.django.async_urls`` instead: the same
paths and names, served by the async views.
"""

from django.urls import path

from lattice_stripe.contrib.django.views import portal, webhook

app_name = "lattice_stripe"

urlpatterns = [
    path("portal/", portal, name="portal"),
    path("webhook/", webhook, name="webhook"),
]
