"""Money: an exact ``Decimal`` amount with its ISO 4217 currency, rounded by the currency's rule.

Rules the bill run relies on:

- An amount is a ``Decimal`` (never a float: ``Money.of(0.1, "EUR")`` is refused) and a
  currency from :data:`MINOR_UNITS` (an unknown code is refused).
- Each currency has its number of minor units (EUR, USD, GBP 2; JPY, KRW 0; KWD, BHD,
  OMR, JOD, TND, LYD, IQD 3; ...). :meth:`Money.rounded` rounds to them with
  ``ROUND_HALF_UP``: a half goes away from zero, so 0.125 EUR is 0.13 and a credit of
  -0.125 EUR is -0.13 (a credit rounds to the same magnitude as the charge it mirrors).
- A bill line is computed exactly (prorating fractions, tiers, percentages) and rounded
  ONCE, when the line is made; the bill's subtotal is the sum of the rounded lines, the
  tax is the subtotal times the rate rounded once, and the total is subtotal + tax. So
  the lines and the tax add up to the total to the minor unit, whatever the fractions.
- Adding, subtracting or comparing two currencies is refused (:class:`CurrencyMismatch`);
  there is no conversion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from topology.errors import SwitchboardError

__all__ = [
    "MINOR_UNITS",
    "CurrencyMismatch",
    "Money",
    "MoneyError",
    "UnknownCurrency",
    "minor_units",
    "parse_decimal",
    "round_amount",
    "total",
]

MINOR_UNITS: dict[str, int] = {
    # two decimals (the usual case)
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2,
    "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "TRY": 2,
    "ZAR": 2, "BRL": 2, "MXN": 2, "INR": 2, "CNY": 2, "HKD": 2, "SGD": 2, "AED": 2,
    "SAR": 2, "ILS": 2, "EGP": 2, "MAD": 2, "RUB": 2, "UAH": 2, "THB": 2, "MYR": 2,
    "PHP": 2, "IDR": 2, "TWD": 2, "ARS": 2, "COP": 2, "NGN": 2, "KES": 2,
    # no minor unit
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "XOF": 0, "XAF": 0, "UGX": 0,
    "PYG": 0, "RWF": 0,
    # three decimals
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}
"""ISO 4217 minor units of the currencies the suite bills in."""


class MoneyError(SwitchboardError):
    """An amount or a currency cannot be used."""


class UnknownCurrency(MoneyError):
    """A currency code that is not in :data:`MINOR_UNITS`."""

    def __init__(self, currency: str) -> None:
        super().__init__(f"unknown currency {currency!r}: expected an ISO 4217 code the "
                         f"suite knows ({', '.join(sorted(MINOR_UNITS))})")
        self.currency = currency


class CurrencyMismatch(MoneyError):
    """Two amounts of different currencies were combined."""

    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"cannot combine {left} and {right}: amounts in different "
                         "currencies are never added (no conversion)")
        self.left = left
        self.right = right


def minor_units(currency: str) -> int:
    """Decimals of ``currency`` (``UnknownCurrency`` if the code is not known)."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise UnknownCurrency(currency) from None


def parse_decimal(value: object, what: str = "amount") -> Decimal:
    """``value`` (a Decimal, an int or a decimal string) as a finite Decimal; floats and
    anything else are refused with ``MoneyError`` naming ``what``."""
    if isinstance(value, bool | float):
        raise MoneyError(f"{what}: {value!r} is a {type(value).__name__}; give a decimal "
                         "string or a Decimal (floats are inexact)")
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, int):
        out = Decimal(value)
    elif isinstance(value, str):
        try:
            out = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"{what}: {value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{what}: {value!r} is not a decimal number")
    if not out.is_finite():
        raise MoneyError(f"{what}: {value!r} is not a finite number")
    return out


def round_amount(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded to the currency's minor units, half away from zero."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Money:
    """An exact amount in a currency. Arithmetic keeps full precision; :meth:`rounded`
    applies the currency's rule (call it once per bill line)."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        minor_units(self.currency)
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise MoneyError(f"amount {self.amount!r}: a finite Decimal is needed")

    @classmethod
    def of(cls, amount: object, currency: str) -> Money:
        """From a Decimal, an int or a decimal string (a float is refused)."""
        return cls(parse_decimal(amount), currency.strip().upper())

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in ``currency``, at its minor units (``0.00`` EUR)."""
        return cls(round_amount(Decimal(0), currency), currency)

    def rounded(self) -> Money:
        """Rounded to the currency's minor units with ROUND_HALF_UP."""
        return Money(round_amount(self.amount, self.currency), self.currency)

    @property
    def is_rounded(self) -> bool:
        """Whether the amount has no more decimals than the currency allows."""
        return round_amount(self.amount, self.currency) == self.amount

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError(f"{other!r} is not Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            raise MoneyError(f"money is multiplied by a Decimal or an int, not {factor!r}")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def text(self) -> str:
        """The amount as stored (``"12.50"``), rounded to the currency's minor units."""
        return str(round_amount(self.amount, self.currency))

    def __str__(self) -> str:
        return f"{self.text()} {self.currency}"


def total(amounts: Iterable[Money], currency: str) -> Money:
    """The sum of ``amounts`` (all in ``currency``; an empty sum is zero)."""
    out = Money.zero(currency)
    for m in amounts:
        out = out + m
    return out
