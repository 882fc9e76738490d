"""The generator's fraud patterns (docs/generator.md#fraud): learnable, overlapping.

A fraudulent record draws its payment method, category and quantity from the FRAUD_*
mixes and takes the dearest of FRAUD_PRODUCT_PICKS products; legitimate records draw from
the documented mix minus fraud's share (`legitimate_weights`), so every overall mix stays
as documented. Episodes start more often at night, and half of them are bursts of one
customer's transactions.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.transaction import Category, PaymentMethod

FRAUD_PAYMENT_WEIGHTS: dict[PaymentMethod, float] = {
    PaymentMethod.CREDIT_CARD: 0.40, PaymentMethod.DEBIT_CARD: 0.05, PaymentMethod.UPI: 0.05,
    PaymentMethod.WALLET: 0.15, PaymentMethod.BANK_TRANSFER: 0.03, PaymentMethod.COD: 0.02,
    PaymentMethod.GIFT_CARD: 0.30,
}
FRAUD_CATEGORY_WEIGHTS: dict[Category, float] = {
    Category.ELECTRONICS: 0.55, Category.CLOTHING: 0.10, Category.GROCERY: 0.03,
    Category.HOME_GARDEN: 0.10, Category.SPORTS: 0.08, Category.BEAUTY: 0.06,
    Category.AUTOMOTIVE: 0.03, Category.BOOKS: 0.01, Category.TOYS: 0.02,
    Category.PHARMACY: 0.02,
}
QUANTITY_WEIGHTS: tuple[float, float, float] = (0.70, 0.20, 0.10)  # 1, 2, 3-5
FRAUD_QUANTITY_WEIGHTS: tuple[float, float, float] = (0.30, 0.30, 0.40)
FRAUD_PRODUCT_PICKS = 3
# UTC hours 23:00-04:59 (the fraud rules' night): an episode starts there FRAUD_NIGHT_FACTOR
# times as often as by day, normalised over the hourly weights so that a day of traffic
# shaped like them keeps `fraud_rate`.
FRAUD_NIGHT_HOURS = frozenset({23, 0, 1, 2, 3, 4})
FRAUD_NIGHT_FACTOR = 6.0
# Half of the fraud episodes are bursts: the same customer's next 1-4 transactions (the
# records drawn right after it) are fraudulent too, which the velocity feature sees.
FRAUD_BURST_SHARE = 0.5
FRAUD_BURST_EXTRA = (1, 4)


def legitimate_weights(weights: Sequence[float], fraud: Sequence[float],
                       rate: float) -> list[float]:
    """The overall mix minus fraud's share of it, so that legitimate and fraudulent
    records together follow `weights` (exactly while no fraud weight exceeds what the
    overall mix leaves, true at the default rate). Never quite zero: every value stays
    possible."""
    total, fraud_total = float(sum(weights)), float(sum(fraud))
    return [max(0.0, w / total - rate * f / fraud_total) + 1e-12
            for w, f in zip(weights, fraud, strict=True)]


def episode_rates(fraud_rate: float, hour_weights: Sequence[float]) -> tuple[float, ...]:
    """Chance, per UTC hour, that a record outside a burst starts a fraud episode.

    An episode is 1 + E records on average (E = FRAUD_BURST_SHARE x the mean burst), so
    episodes start at a rate p with p (1 + E) / (1 + p E) = fraud_rate; night hours get
    FRAUD_NIGHT_FACTOR times the day's p, normalised over `hour_weights`."""
    extra = FRAUD_BURST_SHARE * sum(FRAUD_BURST_EXTRA) / 2
    p = fraud_rate / (1 + extra * (1 - fraud_rate)) if fraud_rate < 1 else 1.0
    factors = [FRAUD_NIGHT_FACTOR if h in FRAUD_NIGHT_HOURS else 1.0 for h in range(24)]
    mean = sum(w * f for w, f in zip(hour_weights, factors, strict=True)) / sum(hour_weights)
    return tuple(min(1.0, p * f / mean) for f in factors)
