"""A small Django project for the tests of lattice_stripe.contrib.django."""
