"""Realistic TransactionEvents (docs/generator.md), deterministic given a seed.

Faker runs only while the customer/product/store pools are built; each event is then
drawn with one `random.Random`, so generation stays far above the stream's ingest rate.

Pools come from `pool_seed` (fixed by default), events from `seed`: the live generator
and the historical seeder therefore share one catalogue of customers, products and
stores (so their records can be joined), while different event seeds still
give different traffic.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from contracts.transaction import (
    CardNetwork,
    Category,
    Channel,
    CustomerTier,
    DeviceType,
    PaymentMethod,
    Region,
    TransactionStatus,
)
from producers.generator_fraud import (
    FRAUD_BURST_EXTRA,
    FRAUD_BURST_SHARE,
    FRAUD_CATEGORY_WEIGHTS,
    FRAUD_PAYMENT_WEIGHTS,
    FRAUD_PRODUCT_PICKS,
    FRAUD_QUANTITY_WEIGHTS,
    QUANTITY_WEIGHTS,
    episode_rates,
    legitimate_weights,
)

# The price ranges (1.99 .. 2499.99) and the example record are in USD: every event is USD.
CURRENCY = "USD"
TAX_RATE = 0.09
DEFAULT_POOL_SEED = 1001
# Share of a customer's events on their preferred channel; the rest follow CHANNEL_WEIGHTS.
# Preferred channels are themselves allotted by CHANNEL_WEIGHTS, so the mix stays exact.
PREFERRED_CHANNEL_SHARE = 0.6


@dataclass(frozen=True)
class CategorySpec:
    weight: float
    price_range: tuple[float, float]
    # sub-category -> product nouns used to build product names
    sub_cats: dict[str, tuple[str, ...]]
    sku_code: str
    brands: tuple[str, ...]


CATEGORIES: dict[Category, CategorySpec] = {
    Category.ELECTRONICS: CategorySpec(
        0.20, (29.99, 2499.99),
        {"smartphones": ("Smartphone",), "laptops": ("Laptop", "Notebook"),
         "audio_headphones": ("Headphones", "Earbuds"), "cameras": ("Camera", "Action Cam"),
         "tablets": ("Tablet",), "wearables": ("Smartwatch", "Fitness Band")},
        "ELC",
        ("Sony", "Samsung", "Apple", "OnePlus", "Xiaomi", "Lenovo", "HP", "Dell", "boAt",
         "JBL", "Canon", "Realme"),
    ),
    Category.CLOTHING: CategorySpec(
        0.18, (9.99, 299.99),
        {"mens_shirts": ("Oxford Shirt", "Linen Shirt"), "womens_dresses": ("Maxi Dress", "Kurta"),
         "shoes": ("Sneakers", "Loafers"), "activewear": ("Track Pants", "Sports Tee"),
         "accessories": ("Belt", "Wallet", "Scarf")},
        "CLO",
        ("Levi's", "Nike", "Adidas", "Zara", "H&M", "Allen Solly", "Van Heusen", "FabIndia",
         "Puma", "Biba"),
    ),
    Category.GROCERY: CategorySpec(
        0.22, (1.99, 89.99),
        {"dairy": ("Milk", "Paneer", "Butter"), "snacks": ("Chips", "Namkeen", "Cookies"),
         "beverages": ("Tea", "Coffee", "Juice"), "frozen": ("Frozen Peas", "Ice Cream"),
         "organic": ("Organic Honey", "Quinoa"), "bakery": ("Bread", "Cake")},
        "GRO",
        ("Amul", "Nestle", "Britannia", "Tata", "Haldiram's", "Parle", "ITC", "Dabur",
         "Mother Dairy", "Organic India"),
    ),
    Category.HOME_GARDEN: CategorySpec(
        0.10, (14.99, 999.99),
        {"furniture": ("Chair", "Bookshelf", "Coffee Table"),
         "kitchen": ("Pressure Cooker", "Cookware Set"), "bedding": ("Bedsheet", "Pillow"),
         "garden_tools": ("Garden Hose", "Pruner"), "lighting": ("LED Bulb", "Table Lamp")},
        "HMG",
        ("IKEA", "Prestige", "Milton", "Bombay Dyeing", "Philips", "Godrej", "Nilkamal",
         "Borosil", "Wipro", "Usha"),
    ),
    Category.SPORTS: CategorySpec(
        0.08, (19.99, 799.99),
        {"fitness": ("Dumbbells", "Yoga Mat"), "outdoor": ("Tent", "Hiking Backpack"),
         "team_sports": ("Cricket Bat", "Football"), "cycling": ("Bicycle", "Helmet"),
         "swimming": ("Goggles", "Swimsuit")},
        "SPT",
        ("Decathlon", "Nike", "Adidas", "Puma", "Yonex", "Cosco", "Nivia", "SG", "Speedo",
         "Hero"),
    ),
    Category.BEAUTY: CategorySpec(
        0.07, (4.99, 199.99),
        {"skincare": ("Face Cream", "Sunscreen"), "makeup": ("Lipstick", "Kajal"),
         "haircare": ("Shampoo", "Hair Oil"), "fragrance": ("Perfume", "Deodorant"),
         "supplements": ("Collagen", "Biotin")},
        "BTY",
        ("Lakme", "Maybelline", "L'Oreal", "Nivea", "Himalaya", "Mamaearth", "Biotique",
         "Forest Essentials", "Dove", "Plum"),
    ),
    Category.AUTOMOTIVE: CategorySpec(
        0.04, (9.99, 499.99),
        {"parts": ("Brake Pads", "Spark Plug"), "accessories": ("Seat Cover", "Phone Mount"),
         "tools": ("Tyre Inflator", "Socket Set"), "car_care": ("Car Shampoo", "Wax"),
         "electronics": ("Dash Cam", "Car Charger")},
        "AUT",
        ("Bosch", "Michelin", "3M", "Castrol", "Exide", "Amaron", "MRF", "Motul", "Shell"),
    ),
    Category.BOOKS: CategorySpec(
        0.05, (5.99, 49.99),
        {"fiction": ("Novel", "Short Stories"), "non_fiction": ("Biography", "History"),
         "textbooks": ("Textbook", "Workbook"), "children": ("Picture Book",),
         "comics": ("Comic", "Graphic Novel")},
        "BKS",
        ("Penguin", "HarperCollins", "Rupa", "Scholastic", "Pearson", "Oxford", "Bloomsbury",
         "Hachette", "Marvel"),
    ),
    Category.TOYS: CategorySpec(
        0.03, (7.99, 199.99),
        {"action_figures": ("Action Figure",), "board_games": ("Board Game",),
         "educational": ("STEM Kit", "Puzzle"), "outdoor": ("Water Blaster", "Kite"),
         "dolls": ("Doll", "Dollhouse")},
        "TOY",
        ("LEGO", "Hasbro", "Mattel", "Funskool", "Hot Wheels", "Fisher-Price", "Nerf",
         "Ravensburger"),
    ),
    Category.PHARMACY: CategorySpec(
        0.03, (2.99, 149.99),
        {"otc_medicine": ("Pain Relief Tablets", "Cough Syrup"),
         "vitamins": ("Vitamin C", "Multivitamin"), "first_aid": ("First Aid Kit", "Bandages"),
         "personal_care": ("Hand Wash", "Toothpaste"), "baby_care": ("Diapers", "Baby Lotion")},
        "PHR",
        ("Cipla", "Sun Pharma", "Himalaya", "Dabur", "Dr. Reddy's", "Johnson & Johnson",
         "Abbott", "Dettol", "Zandu"),
    ),
}


@dataclass(frozen=True)
class City:
    name: str
    state: str  # state code (ISO 3166-2:IN subdivision)
    postal_prefix: str  # first three PIN digits
    store_code: str  # as in STORE-MUM-042


@dataclass(frozen=True)
class RegionSpec:
    weight: float
    cities: tuple[City, ...]


REGIONS: dict[Region, RegionSpec] = {
    Region.NORTH: RegionSpec(0.22, (
        City("Delhi", "DL", "110", "DEL"), City("Chandigarh", "CH", "160", "CHD"),
        City("Lucknow", "UP", "226", "LKO"), City("Jaipur", "RJ", "302", "JAI"))),
    Region.SOUTH: RegionSpec(0.25, (
        City("Bangalore", "KA", "560", "BLR"), City("Chennai", "TN", "600", "CHE"),
        City("Hyderabad", "TG", "500", "HYD"), City("Kochi", "KL", "682", "KOC"))),
    Region.EAST: RegionSpec(0.12, (
        City("Kolkata", "WB", "700", "KOL"), City("Patna", "BR", "800", "PAT"),
        City("Bhubaneswar", "OD", "751", "BBS"), City("Guwahati", "AS", "781", "GAU"))),
    Region.WEST: RegionSpec(0.28, (
        City("Mumbai", "MH", "400", "MUM"), City("Pune", "MH", "411", "PUN"),
        City("Ahmedabad", "GJ", "380", "AMD"), City("Goa", "GA", "403", "GOA"))),
    Region.CENTRAL: RegionSpec(0.08, (
        City("Bhopal", "MP", "462", "BHO"), City("Nagpur", "MH", "440", "NAG"),
        City("Indore", "MP", "452", "IDR"), City("Raipur", "CT", "492", "RPR"))),
    # Guwahati is listed under both east and northeast, so it appears with both regions.
    Region.NORTHEAST: RegionSpec(0.05, (
        City("Guwahati", "AS", "781", "GAU"), City("Imphal", "MN", "795", "IMP"),
        City("Shillong", "ML", "793", "SHL"), City("Agartala", "TR", "799", "AGT"))),
}

TIER_WEIGHTS: dict[CustomerTier, float] = {
    CustomerTier.BRONZE: 0.50, CustomerTier.SILVER: 0.30,
    CustomerTier.GOLD: 0.15, CustomerTier.PLATINUM: 0.05,
}
PAYMENT_WEIGHTS: dict[PaymentMethod, float] = {
    PaymentMethod.CREDIT_CARD: 0.30, PaymentMethod.DEBIT_CARD: 0.20, PaymentMethod.UPI: 0.25,
    PaymentMethod.WALLET: 0.10, PaymentMethod.BANK_TRANSFER: 0.05, PaymentMethod.COD: 0.08,
    PaymentMethod.GIFT_CARD: 0.02,
}
CHANNEL_WEIGHTS: dict[Channel, float] = {
    Channel.POS_IN_STORE: 0.25, Channel.WEB: 0.20, Channel.MOBILE_APP: 0.35,
    Channel.MARKETPLACE: 0.15, Channel.CALL_CENTER: 0.05,
}
STATUS_WEIGHTS: dict[TransactionStatus, float] = {
    TransactionStatus.COMPLETED: 0.92, TransactionStatus.PENDING: 0.04,
    TransactionStatus.FAILED: 0.02, TransactionStatus.REFUNDED: 0.015,
    TransactionStatus.CHARGEBACK: 0.005,
}
# Plausible Indian card mixes (Amex and Discover issue no debit cards here).
CARD_NETWORK_WEIGHTS: dict[PaymentMethod, dict[CardNetwork, float]] = {
    PaymentMethod.CREDIT_CARD: {CardNetwork.VISA: 0.40, CardNetwork.MASTERCARD: 0.30,
                                CardNetwork.RUPAY: 0.15, CardNetwork.AMEX: 0.10,
                                CardNetwork.DISCOVER: 0.05},
    PaymentMethod.DEBIT_CARD: {CardNetwork.VISA: 0.45, CardNetwork.MASTERCARD: 0.30,
                               CardNetwork.RUPAY: 0.25},
}
# Digital channels carry a device, a session and a (masked) IP, and no store. The call
# centre is not digital: no device or session, but the order is booked against a store in
# the customer's home region, like a till.
DEVICE_WEIGHTS: dict[Channel, dict[DeviceType, float]] = {
    Channel.WEB: {DeviceType.DESKTOP: 0.65, DeviceType.TABLET: 0.10,
                  DeviceType.ANDROID: 0.15, DeviceType.IOS: 0.10},
    Channel.MOBILE_APP: {DeviceType.ANDROID: 0.75, DeviceType.IOS: 0.25},
    Channel.MARKETPLACE: {DeviceType.ANDROID: 0.55, DeviceType.IOS: 0.15,
                          DeviceType.DESKTOP: 0.25, DeviceType.TABLET: 0.05},
}
STORE_CHANNELS = frozenset({Channel.POS_IN_STORE.value, Channel.CALL_CENTER.value})

# Seasonality of history: weekends +40% grocery/clothing, weekdays +30% electronics.
WEEKEND_BOOST: dict[Category, float] = {Category.GROCERY: 1.4, Category.CLOTHING: 1.4}
WEEKDAY_BOOST: dict[Category, float] = {Category.ELECTRONICS: 1.3}

# Relative traffic by local hour: 8 AM-10 PM (business hours) carry ~87% of it,
# with lunch and evening peaks. Used to place historical timestamps and, optionally, to shape
# the live rate (`rate_multiplier`).
HOUR_WEIGHTS: tuple[float, ...] = (
    0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.40, 0.70,  # 00-07
    1.00, 1.20, 1.40, 1.50, 1.60, 1.50, 1.40, 1.40,  # 08-15
    1.50, 1.70, 1.90, 2.00, 1.90, 1.60, 0.90, 0.40,  # 16-23
)
_MEAN_HOUR_WEIGHT = sum(HOUR_WEIGHTS) / 24

# Version nibble (bits 76-79) = 4, variant bits (62-63) = 0b10: a well-formed UUID v4.
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID_SET = (0x4 << 76) | (0x2 << 62)

_MIN_SEC = tuple(f"{m:02d}:{s:02d}." for m in range(60) for s in range(60))
_MILLIS_Z = tuple(f"{ms:03d}Z" for ms in range(1000))

_MODEL_WORDS = ("Pro", "Max", "Lite", "Plus", "Ultra", "Classic", "Prime", "Neo", "Air",
                "Elite", "Essential", "Select", "Nova", "Active", "Fresh", "Comfort")

INVALID_KINDS: tuple[str, ...] = (
    "not_json", "not_object", "truncated", "missing_field", "null_field", "wrong_type",
    "bad_enum", "quantity_below_one", "negative_price", "bad_timestamp", "bad_currency",
    "fraud_score_out_of_range",
)
_REQUIRED_FIELDS = ("transaction_id", "event_timestamp", "customer_id", "product_id",
                    "product_name", "category", "quantity", "unit_price", "total_amount",
                    "currency", "payment_method", "transaction_status", "channel", "region",
                    "city")
# Values no JSON parser coerces to the field's type: pydantic and Spark's from_json both fail
# (a number in a string field, by contrast, Spark would silently turn into text).
_WRONG_TYPES: tuple[tuple[str, Any], ...] = (
    ("quantity", "lots"), ("unit_price", "cheap"), ("total_amount", {"amount": 1}),
    ("quantity", [1, 2]), ("total_amount", "12,50"),
)
_BAD_ENUMS: tuple[tuple[str, str], ...] = (
    ("category", "weapons"), ("payment_method", "barter"), ("channel", "telepathy"),
    ("region", "atlantis"), ("transaction_status", "lost"), ("customer_tier", "diamond"),
    ("device_type", "toaster"), ("card_network", "dinersclub"),
)
_NOT_JSON = (b"hello world", b"\x00\xff\xfe\x80 binary", b"{'single': 'quotes'}",
             b"transaction_id=abc,quantity=2", b"", b"{\"a\": }")
_BAD_TIMESTAMPS = ("yesterday", "2025-13-45T99:00:00Z", "", "15/01/2025 14:32")


def rate_multiplier(hour: int) -> float:
    """Live traffic factor for a local hour; averages 1.0 over a day."""
    return HOUR_WEIGHTS[hour % 24] / _MEAN_HOUR_WEIGHT


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Normalised cumulative weights ending at exactly 1.0, for `bisect_right(cum, random())`."""
    total = float(sum(weights))
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc / total)
    cum[-1] = 1.0  # random() < 1.0, so the last bucket always catches the rounding residue
    return cum


def _allot(n: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split n items by weight exactly (largest remainder), so pools match the mix."""
    k = len(weights)
    if n < minimum * k:
        minimum = 0
    rest = n - minimum * k
    total = float(sum(weights))
    shares = [rest * w / total for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(k), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return [c + minimum for c in counts]


def _values(mapping: dict[Any, float]) -> tuple[list[str], list[float]]:
    return [str(k.value) for k in mapping], _cumulative(list(mapping.values()))


def _carve(weights: Sequence[float], fraud: Sequence[float], rate: float) -> list[float]:
    """Cumulative legitimate weights: see `legitimate_weights`."""
    return _cumulative(legitimate_weights(weights, fraud, rate))


def _epoch_ms(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # naive means UTC, as in the contract
    return int(at.timestamp() * 1000)


class TransactionGenerator:
    """Draws valid TransactionEvents (JSON-ready dicts) and deliberately broken records."""

    def __init__(
        self,
        seed: int | None = None,
        *,
        num_customers: int = 5000,
        num_products: int = 500,
        num_stores: int = 50,
        fraud_rate: float = 0.02,
        pool_seed: int = DEFAULT_POOL_SEED,
    ) -> None:
        if min(num_customers, num_products, num_stores) < 1:
            raise ValueError("pools need at least one customer, product and store")
        if not 0.0 <= fraud_rate <= 1.0:
            raise ValueError("fraud_rate must be within [0, 1]")
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
        self.fraud_rate = fraud_rate
        self._rng = random.Random(self.seed)
        self._build_pools(random.Random(pool_seed), pool_seed, num_customers, num_products,
                          num_stores)
        self._categories = [str(c.value) for c in CATEGORIES]
        base = [spec.weight for spec in CATEGORIES.values()]
        fraud_cats = [FRAUD_CATEGORY_WEIGHTS[c] for c in CATEGORIES]
        self._cat_cum_base = _carve(base, fraud_cats, fraud_rate)
        self._cat_cum_weekend = _carve(
            [w * WEEKEND_BOOST.get(c, 1.0) for c, w in zip(CATEGORIES, base, strict=True)],
            fraud_cats, fraud_rate)
        self._cat_cum_weekday = _carve(
            [w * WEEKDAY_BOOST.get(c, 1.0) for c, w in zip(CATEGORIES, base, strict=True)],
            fraud_cats, fraud_rate)
        self._fraud_cat_cum = _cumulative(fraud_cats)
        self._payments = [str(p.value) for p in PAYMENT_WEIGHTS]
        self._payment_cum = _carve(list(PAYMENT_WEIGHTS.values()),
                                   [FRAUD_PAYMENT_WEIGHTS[p] for p in PAYMENT_WEIGHTS],
                                   fraud_rate)
        self._fraud_payment_cum = _cumulative([FRAUD_PAYMENT_WEIGHTS[p]
                                               for p in PAYMENT_WEIGHTS])
        self._quantity_cum = _carve(QUANTITY_WEIGHTS, FRAUD_QUANTITY_WEIGHTS, fraud_rate)
        self._fraud_quantity_cum = _cumulative(FRAUD_QUANTITY_WEIGHTS)
        self._episode_rate = episode_rates(fraud_rate, HOUR_WEIGHTS)
        self._burst_left = 0  # records still to come in the current fraud burst
        self._burst_customer: tuple[str, ...] = ()
        self._channels, self._channel_cum = _values(CHANNEL_WEIGHTS)
        self._statuses, self._status_cum = _values(STATUS_WEIGHTS)
        self._networks = {str(p.value): _values(w) for p, w in CARD_NETWORK_WEIGHTS.items()}
        self._devices = {str(c.value): _values(w) for c, w in DEVICE_WEIGHTS.items()}
        # Formatting is the costliest step per event: the "YYYY-MM-DDTHH:" prefix changes once
        # an hour, so it is cached, and the rest comes from the tables below.
        self._iso_hour = -1
        self._iso_prefix = ""

    # ----------------------------------------------------------------------------- pools

    def _build_pools(self, rng: random.Random, pool_seed: int, num_customers: int,
                     num_products: int, num_stores: int) -> None:
        from faker import Faker  # only needed here; keeps importing this module cheap

        fake = Faker("en_IN")
        fake.seed_instance(pool_seed)
        regions = list(REGIONS)

        # Stores: at least one per region (when there are enough), the rest by region weight.
        store_regions = [
            r for r, c in zip(regions, _allot(num_stores, [REGIONS[r].weight for r in regions],
                                              minimum=1), strict=True)
            for _ in range(c)
        ]
        rng.shuffle(store_regions)
        self._stores: list[tuple[str, str, str, str, str]] = []
        self._stores_by_region: dict[str, list[tuple[str, str, str, str, str]]] = {
            r.value: [] for r in regions}
        for i, region in enumerate(store_regions, start=1):
            city = rng.choice(REGIONS[region].cities)
            store = (f"STORE-{city.store_code}-{i:03d}", region.value, city.name, city.state,
                     f"{city.postal_prefix}{rng.randrange(1, 100):03d}")
            self._stores.append(store)
            self._stores_by_region[region.value].append(store)

        # Customers: tiers, home regions and preferred channels allotted exactly by weight.
        def spread(weights: dict[Any, float]) -> list[str]:
            values = [str(k.value) for k, c in zip(
                weights, _allot(num_customers, list(weights.values())), strict=True)
                for _ in range(c)]
            rng.shuffle(values)
            return values

        tiers = spread(TIER_WEIGHTS)
        homes = spread({r: s.weight for r, s in REGIONS.items()})
        preferred = spread(CHANNEL_WEIGHTS)
        numbers = rng.sample(range(1, 100_000_000), num_customers)
        self._customers: list[tuple[str, str, str, str, str, str, str, str]] = []
        for number, tier, home, channel in zip(numbers, tiers, homes, preferred, strict=True):
            city = rng.choice(REGIONS[Region(home)].cities)
            a, b, _, _ = fake.ipv4_public().split(".")
            self._customers.append((
                f"CUST-{number:08d}", tier, home, city.name, city.state,
                f"{city.postal_prefix}{rng.randrange(1, 100):03d}", channel,
                f"{a}.{b}.xxx.xxx",  # masked, as in the example record
            ))

        # Products: every category gets some, in proportion to its weight. The event picks a
        # category by weight first, so the category mix does not depend on the pool.
        self._products_by_cat: list[list[tuple[str, str, str, str, str, float]]] = []
        counts = _allot(num_products, [s.weight for s in CATEGORIES.values()], minimum=1)
        sku_numbers = iter(rng.sample(range(1, max(100_000, 2 * num_products)), num_products))
        for (category, spec), count in zip(CATEGORIES.items(), counts, strict=True):
            house_brands = [fake.company() for _ in range(2)]  # private labels for realism
            sub_cats = list(spec.sub_cats)
            products = []
            for _ in range(max(count, 1)):
                sub = rng.choice(sub_cats)
                brand = rng.choice(spec.brands) if rng.random() < 0.85 else rng.choice(
                    house_brands)
                model = rng.choice(_MODEL_WORDS)
                if rng.random() < 0.5:
                    model = f"{model} {rng.randrange(2, 1000)}"
                name = f"{brand} {model} {rng.choice(spec.sub_cats[sub])}"
                lo, hi = spec.price_range
                # Uniform over the range, priced at .99 like the range's bounds (x.99 .. y.99).
                price = min(hi, max(lo, int(rng.uniform(lo, hi)) + 0.99))
                sku = f"SKU-{spec.sku_code}-{next(sku_numbers, 0):05d}"
                products.append((sku, name, category.value, sub, brand, price))
            self._products_by_cat.append(products)

    # ----------------------------------------------------------------------------- events

    def _iso(self, ms: int) -> str:
        """Epoch milliseconds -> 'YYYY-MM-DDTHH:MM:SS.mmmZ' from cached pieces (no formatting)."""
        sec, milli = divmod(ms, 1000)
        hour, rem = divmod(sec, 3600)
        if hour != self._iso_hour:
            self._iso_hour = hour
            self._iso_prefix = time.strftime("%Y-%m-%dT%H:", time.gmtime(hour * 3600))
        return self._iso_prefix + _MIN_SEC[rem] + _MILLIS_Z[milli]

    def _event(self, ms: int, cat_cum: list[float]) -> dict[str, Any]:
        rng = self._rng
        r = rng.random
        if self._burst_left:
            self._burst_left -= 1
            fraudulent = True
            customer = self._burst_customer
        else:
            fraudulent = r() < self._episode_rate[ms // 3_600_000 % 24]
            customer = self._customers[int(r() * len(self._customers))]
            if fraudulent and r() < FRAUD_BURST_SHARE:
                lo, hi = FRAUD_BURST_EXTRA
                self._burst_left = lo + int(r() * (hi - lo + 1))
                self._burst_customer = customer
        customer_id, tier, home, city, state, postal, preferred, ip = customer
        if fraudulent:
            products = self._products_by_cat[bisect_right(self._fraud_cat_cum, r())]
            # The dearest of a few picks: fraud goes for resellable, expensive goods.
            product_id, name, category, sub_category, brand, price = max(
                (products[int(r() * len(products))] for _ in range(FRAUD_PRODUCT_PICKS)),
                key=lambda p: p[5])
        else:
            products = self._products_by_cat[bisect_right(cat_cum, r())]
            product_id, name, category, sub_category, brand, price = products[
                int(r() * len(products))]

        channel = preferred if r() < PREFERRED_CHANNEL_SHARE else self._channels[
            bisect_right(self._channel_cum, r())]
        region = home
        store_id = device = session = ip_address = None
        if channel in STORE_CHANNELS:
            stores = self._stores_by_region[home] or self._stores
            store_id, region, city, state, postal = stores[int(r() * len(stores))]
        else:
            devices, device_cum = self._devices[channel]
            device = devices[bisect_right(device_cum, r())]
            session = f"sess-{rng.getrandbits(48):012x}"
            ip_address = ip

        # int(r() * k) instead of randint: same uniform integers at a third of the cost.
        bucket = bisect_right(self._fraud_quantity_cum if fraudulent else self._quantity_cum,
                              r())
        quantity = bucket + 1 if bucket < 2 else 3 + int(r() * 3)  # 1, 2 or 3-5
        u = r()  # whole percents: 60% none, 30% 5-15, 10% 20-50
        discount = 0.0 if u < 0.6 else float(5 + int(r() * 11)) if u < 0.9 else float(
            20 + int(r() * 31))
        total = round(quantity * price * (1 - discount / 100), 2)

        payment = self._payments[bisect_right(
            self._fraud_payment_cum if fraudulent else self._payment_cum, r())]
        network = None
        if payment in self._networks:
            networks, network_cum = self._networks[payment]
            network = networks[bisect_right(network_cum, r())]

        if fraudulent:
            # Scores have 4 decimals: k / 10_000 is the same float round() would give.
            score = (7000 + int(r() * 3001)) / 10_000
            if ip_address is not None:
                # A fraudulent session rarely comes from the customer's usual network.
                ip_address = f"{11 + int(r() * 213)}.{int(r() * 256)}.xxx.xxx"
        else:
            score = int(r() * 1501) / 10_000

        # UUID v4 from our own RNG (uuid.uuid4 reads os.urandom and would break determinism).
        h = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"
        return {
            "transaction_id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
            "event_timestamp": self._iso(ms),
            "processing_timestamp": None,
            "customer_id": customer_id,
            "customer_tier": tier,
            "product_id": product_id,
            "product_name": name,
            "category": category,
            "sub_category": sub_category,
            "brand": brand,
            "quantity": quantity,
            "unit_price": price,
            "discount_percent": discount,
            "total_amount": total,
            "tax_amount": round(total * TAX_RATE, 2),
            "currency": CURRENCY,
            "payment_method": payment,
            "card_network": network,
            "transaction_status": self._statuses[bisect_right(self._status_cum, r())],
            "channel": channel,
            "store_id": store_id,
            "region": region,
            "city": city,
            "state": state,
            "postal_code": postal,
            "device_type": device,
            "session_id": session,
            "ip_address": ip_address,
            "is_fraudulent": fraudulent,
            "fraud_score": score,
            "batch_id": None,
        }

    def event(self, at: datetime | None = None) -> dict[str, Any]:
        """One valid event at `at` (default: now), as a JSON-ready dict."""
        ms = int(time.time() * 1000) if at is None else _epoch_ms(at)
        return self._event(ms, self._cat_cum_base)

    def events(self, n: int) -> Iterator[dict[str, Any]]:
        """n live events stamped with the current time."""
        for _ in range(n):
            yield self._event(int(time.time() * 1000), self._cat_cum_base)

    # ----------------------------------------------------------------------------- history

    def _history_ms(self, n: int, days: float, end: datetime | None,
                    tz: timezone) -> Iterator[tuple[int, bool]]:
        """n (epoch ms, is_weekend) pairs in [end - days, end), chronological.

        Each local hour of the window is a slot weighted by HOUR_WEIGHTS (and by how much of
        it lies inside the window); records are dealt to slots by weight, then spread
        uniformly within their slot and sorted, so consecutive rows share a date (few,
        large Delta partitions files per write).
        """
        if n < 0 or days <= 0:
            raise ValueError("need n >= 0 and days > 0")
        end_ms = _epoch_ms(end or datetime.now(UTC))
        start_ms = end_ms - int(days * 86_400_000)
        offset_ms = int((tz.utcoffset(None) or timedelta(0)).total_seconds() * 1000)
        hour_ms = 3_600_000
        first = (start_ms + offset_ms) // hour_ms  # local hour index of the first slot
        last = (end_ms - 1 + offset_ms) // hour_ms
        slots: list[tuple[int, int, bool]] = []
        weights: list[float] = []
        for local_hour in range(first, last + 1):
            lo = max(start_ms, local_hour * hour_ms - offset_ms)
            hi = min(end_ms, (local_hour + 1) * hour_ms - offset_ms)
            weekday = (local_hour // 24 + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
            slots.append((lo, hi, weekday >= 5))
            weights.append(HOUR_WEIGHTS[local_hour % 24] * (hi - lo) / hour_ms)
        cum = _cumulative(weights)
        counts = [0] * len(slots)
        r = self._rng.random
        for _ in range(n):
            counts[bisect_right(cum, r())] += 1
        for (lo, hi, weekend), count in zip(slots, counts, strict=True):
            if count:
                span = hi - lo
                for u in sorted(r() for _ in range(count)):
                    yield lo + int(u * span), weekend

    def history_timestamps(self, n: int, days: float, end: datetime | None = None, *,
                           tz: timezone = UTC) -> Iterator[datetime]:
        """The timestamps `history` uses: chronological, weighted toward 8 AM-10 PM in `tz`."""
        for ms, _ in self._history_ms(n, days, end, tz):
            yield datetime.fromtimestamp(ms / 1000, UTC)

    def history_records(self, n: int, days: float, end: datetime | None = None, *,
                        tz: timezone = UTC) -> Iterator[tuple[int, dict[str, Any]]]:
        """Historical events with their event time as epoch ms (for columnar writers).

        Hours and weekends are taken in `tz` (default UTC, the zone the analyses bucket
        by); weekends boost grocery/clothing by 40%, weekdays electronics by 30%.
        """
        weekend_cum, weekday_cum = self._cat_cum_weekend, self._cat_cum_weekday
        for ms, weekend in self._history_ms(n, days, end, tz):
            yield ms, self._event(ms, weekend_cum if weekend else weekday_cum)

    def history(self, n: int, days: float, end: datetime | None = None, *,
                tz: timezone = UTC) -> Iterator[dict[str, Any]]:
        """n historical events over the `days` before `end` (default now), chronological."""
        for _, event in self.history_records(n, days, end, tz=tz):
            yield event

    # ----------------------------------------------------------------------------- invalid

    def invalid_record(self, kind: str | None = None, *,
                       at: datetime | None = None) -> tuple[str, bytes, str]:
        """(key, raw bytes, kind) of one malformed record; the key is its transaction_id."""
        rng = self._rng
        kind = kind or rng.choice(INVALID_KINDS)
        event = self.event(at)
        key = event["transaction_id"]
        if kind == "not_json":
            return key, rng.choice(_NOT_JSON), kind
        if kind == "not_object":
            value: Any = rng.choice([[1, 2, 3], "a string", 42, None, True, [event]])
            return key, orjson.dumps(value), kind
        if kind == "truncated":
            raw = orjson.dumps(event)
            return key, raw[: rng.randrange(1, len(raw) - 1)], kind
        if kind == "missing_field":
            del event[rng.choice(_REQUIRED_FIELDS)]
        elif kind == "null_field":
            event[rng.choice(_REQUIRED_FIELDS)] = None
        elif kind == "wrong_type":
            name, bad = rng.choice(_WRONG_TYPES)
            event[name] = bad
        elif kind == "bad_enum":
            name, bad = rng.choice(_BAD_ENUMS)
            event[name] = bad
        elif kind == "quantity_below_one":
            event["quantity"] = rng.choice([0, -1, -5])
        elif kind == "negative_price":
            event["unit_price"] = -abs(event["unit_price"]) or -1.0
        elif kind == "bad_timestamp":
            event["event_timestamp"] = rng.choice(_BAD_TIMESTAMPS)
        elif kind == "bad_currency":
            event["currency"] = rng.choice(["rupees", "usd", "US", "DOLLARS", ""])
        elif kind == "fraud_score_out_of_range":
            event["fraud_score"] = rng.choice([1.7, -0.2, 42.0])
        else:
            raise ValueError(f"unknown invalid kind {kind!r}; expected one of {INVALID_KINDS}")
        return key, orjson.dumps(event), kind

    def invalid(self, at: datetime | None = None) -> tuple[bytes, str]:
        """One malformed record (raw bytes) and its kind, one of INVALID_KINDS."""
        _, raw, kind = self.invalid_record(at=at)
        return raw, kind

