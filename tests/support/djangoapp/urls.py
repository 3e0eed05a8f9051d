"""The test project's URLs: the account page and the app's views, sync and async."""

from django.urls import include, path

from djangoapp.billing import account

urlpatterns = [
    path("account/", account, name="account"),
    path("billing/", include("lattice_stripe.contrib.django.urls")),
    path("async/", include(("lattice_stripe.contrib.django.async_urls", "async"), "async")),
]
