"""Money: Decimal with its currency, rounded half away from zero to the currency's minor
units, never mixed, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bss.money import (
    CurrencyMismatch,
    Money,
    MoneyError,
    UnknownCurrency,
    minor_units,
    round_amount,
    total,
)


def test_minor_units_per_currency() -> None:
    assert [minor_units(c) for c in ("EUR", "USD", "GBP", "JPY", "KWD", "BHD")] == [
        2, 2, 2, 0, 3, 3]
    with pytest.raises(UnknownCurrency, match="'XYZ'"):
        minor_units("XYZ")
    with pytest.raises(UnknownCurrency):
        Money.of("1", "eur!")


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("0.125", "EUR", "0.13"),      # half up
    ("0.124999", "EUR", "0.12"),
    ("-0.125", "EUR", "-0.13"),    # half away from zero: a credit mirrors the charge
    ("2.5", "JPY", "3"),
    ("-2.5", "JPY", "-3"),
    ("1.0005", "KWD", "1.001"),
    ("1.0004", "BHD", "1.000"),
    ("7", "EUR", "7.00"),
])
def test_rounding_is_half_up_to_the_minor_unit(amount: str, currency: str,
                                               expected: str) -> None:
    m = Money.of(amount, currency)
    assert m.rounded().text() == expected
    assert round_amount(Decimal(amount), currency) == Decimal(expected)
    assert str(m.rounded()) == f"{expected} {currency}"


def test_rounding_once_per_line_differs_from_rounding_the_sum() -> None:
    """Three lines of a third of 100: each rounds to 33.33 and the bill's sum is 99.99,
    the sum of what the customer reads, not round(100)."""
    third = Money.of("100", "EUR") * (Decimal(1) / 3)
    lines = [third.rounded() for _ in range(3)]
    assert total(lines, "EUR").text() == "99.99"
    assert (third * 3).rounded().text() == "100.00"


def test_currencies_never_mix() -> None:
    with pytest.raises(CurrencyMismatch, match="EUR and USD"):
        _ = Money.of("1", "EUR") + Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch):
        total([Money.of("1", "EUR"), Money.of("2", "GBP")], "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1", "EUR") < Money.of("2", "GBP")


def test_floats_and_garbage_are_refused() -> None:
    with pytest.raises(MoneyError, match="float"):
        Money.of(0.1, "EUR")
    with pytest.raises(MoneyError, match="not a decimal"):
        Money.of("ten", "EUR")
    with pytest.raises(MoneyError, match="finite"):
        Money.of("NaN", "EUR")
    with pytest.raises(MoneyError):
        _ = Money.of("1", "EUR") * 1.5  # type: ignore[operator]


def test_exact_arithmetic_keeps_precision_until_rounded() -> None:
    m = Money.of("10", "EUR") * Decimal("0.333333333333")
    assert not m.is_rounded
    assert m.amount == Decimal("3.33333333333000")
    assert (-m).rounded().text() == "-3.33"
    assert Money.zero("JPY").text() == "0"
    assert Money.zero("KWD").text() == "0.000"
