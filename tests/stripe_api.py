"""Where the Stripe API excerpts live: ``shared/stripe-api`` beside the project's checkout."""

from pathlib import Path

STRIPE_API = Path(__file__).resolve().parents[2] / "shared" / "stripe-api"
