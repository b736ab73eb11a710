"""Money display: each organisation's ISO 4217 currency, available while a request runs.

No conversion happens anywhere: every figure an organisation enters and sees is in its own
currency, and the code is shown beside every money figure. ``org_view`` sets the current
organisation's currency for the request (:func:`use_currency`); formatting code reads it with
:func:`current_currency`. Pure Python, no Django.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DEFAULT_CURRENCY = "EUR"

# Active ISO 4217 alphabetic codes (list one, 2024), funds and precious metals left out.
_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP "
    "MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR "
    "RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT "
    "TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER "
    "ZAR ZMW ZWG "
)
ISO_4217 = frozenset(_CODES.split())

_CURRENT: ContextVar[str] = ContextVar("opshero_currency", default="")


def normalise_currency(code: str) -> str:
    """``" eur "`` -> ``"EUR"``; raise ``ValueError`` with a plain reason otherwise."""
    text = (code or "").strip().upper()
    if len(text) != 3 or not text.isalpha():
        raise ValueError("A currency is a three-letter ISO 4217 code, such as EUR or USD.")
    if text not in ISO_4217:
        raise ValueError(f"{text} is not an ISO 4217 currency code.")
    return text


def current_currency() -> str:
    """The currency of the organisation being served ("" outside a request)."""
    return _CURRENT.get()


@contextmanager
def use_currency(code: str) -> Iterator[None]:
    token = _CURRENT.set(code or "")
    try:
        yield
    finally:
        _CURRENT.reset(token)
