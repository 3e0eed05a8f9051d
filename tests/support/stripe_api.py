"""Where the Stripe API excerpts live: ``shared/stripe-api`` beside the project's checkout.

The nearest ancestor directory holding ``shared/stripe-api`` wins, so a checkout
in a nested work tree finds the same excerpts.
"""

from pathlib import Path

_HERE = Path(__file__).resolve()
STRIPE_API = next(
    (
        parent / "shared" / "stripe-api"
        for parent in _HERE.parents
        if (parent / "shared" / "stripe-api").is_dir()
    ),
    _HERE.parents[2] / "shared" / "stripe-api",
)
