"""The URLs of :mod:`lattice_stripe.contrib.django.urls`, served by the async (ASGI) views."""

from django.urls import path

from lattice_stripe.contrib.django.views import async_portal, async_webhook

app_name = "lattice_stripe"

urlpatterns = [
    path("portal/", async_portal, name="portal"),
    path("webhook/", async_webhook, name="webhook"),
]
