"""Country names as retail exports write them, to ISO 3166 alpha-2 codes."""

from __future__ import annotations

from crm_core.iso_countries import is_country_code

COUNTRY_CODES = {
    "united kingdom": "GB",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "eire": "IE",
    "ireland": "IE",
    "france": "FR",
    "germany": "DE",
    "netherlands": "NL",
    "norway": "NO",
    "australia": "AU",
    "switzerland": "CH",
    "spain": "ES",
    "poland": "PL",
    "portugal": "PT",
    "italy": "IT",
    "belgium": "BE",
    "lithuania": "LT",
    "japan": "JP",
    "iceland": "IS",
    "denmark": "DK",
    "cyprus": "CY",
    "sweden": "SE",
    "austria": "AT",
    "israel": "IL",
    "finland": "FI",
    "bahrain": "BH",
    "greece": "GR",
    "hong kong": "HK",
    "singapore": "SG",
    "lebanon": "LB",
    "united arab emirates": "AE",
    "saudi arabia": "SA",
    "czech republic": "CZ",
    "canada": "CA",
    "brazil": "BR",
    "usa": "US",
    "united states": "US",
    "malta": "MT",
    "rsa": "ZA",
    "south africa": "ZA",
    "china": "CN",
    "korea": "KR",
    "india": "IN",
    "mexico": "MX",
}


def country_code(name: str | None) -> str | None:
    """ISO code for a country name or code; None for unknown or deliberately vague ones
    ("Unspecified", "European Community", "Channel Islands")."""
    value = (name or "").strip()
    if is_country_code(value):
        return value.upper()
    return COUNTRY_CODES.get(value.casefold())
