"""Pure validators for organisation, contact and asset fields.

Each returns the canonical form of a value or raises ValueError with a reason a person can
act on. No database, no network.
"""

from __future__ import annotations

import ipaddress
import re

import idna
from email_validator import EmailNotValidError, validate_email
from iso3166 import countries_by_alpha2
from packageurl import PackageURL

from concord.orgs.model import AssetKind, OrgKind

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# The pattern of the CPE 2.3 formatted string binding from NIST's cpe-naming_2.3.xsd: 13
# fields, unreserved characters a-z A-Z 0-9 - . _, anything else quoted with a backslash,
# * and ? only at the ends, a language tag in the language field.
_CPE_AV = (
    r"""(?:(?:\?*|\*?)(?:[a-zA-Z0-9\-._]|\\[\\*?!"#$%&'()+,/:;<=>@\[\]^`{|}~])+(?:\?*|\*?)|[*\-])"""
)
CPE23_RE = re.compile(
    rf"cpe:2\.3:[aho*\-](?::{_CPE_AV}){{5}}"
    rf"(?::(?:[a-zA-Z]{{2,3}}(?:-(?:[a-zA-Z]{{2}}|[0-9]{{3}}))?|[*\-]))(?::{_CPE_AV}){{4}}"
)
LANGUAGES = ("en", "ru")
MAX_ASN = 4_294_967_295
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


# Words that name pages of the UI under /organizations/.
RESERVED_SLUGS = frozenset({"new", "import", "search"})


def slug(value: str) -> str:
    cleaned = value.strip().lower()
    if not SLUG_RE.match(cleaned):
        raise ValueError(f"invalid slug {value!r}: use 1-64 lower-case letters, digits and hyphens")
    if cleaned in RESERVED_SLUGS:
        raise ValueError(f"the slug {cleaned!r} is reserved; choose another")
    return cleaned


def org_kind(value: str) -> OrgKind:
    try:
        return OrgKind(value.strip().lower())
    except ValueError:
        kinds = ", ".join(k.value for k in OrgKind)
        raise ValueError(f"unknown organisation kind {value!r}; use one of {kinds}") from None


def country(value: str) -> str:
    code = value.strip().upper()
    if code not in countries_by_alpha2:
        raise ValueError(f"invalid country code {value!r}: use ISO 3166-1 alpha-2, such as KZ")
    return code


def language(value: str) -> str:
    code = value.strip().lower()
    if code not in LANGUAGES:
        raise ValueError(f"unsupported language {value!r}; use one of {', '.join(LANGUAGES)}")
    return code


def email(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"invalid e-mail address {value!r}: {_email_fault(str(exc))}") from None


# The e-mail library's reasons, by a phrase each holds, in words that are translated: its
# own sentences are English only and some quote the characters at fault.
_EMAIL_FAULTS = (
    ("must have an @-sign", "it has no @-sign"),
    ("something before the @-sign", "nothing comes before the @-sign"),
    ("something after the @-sign", "nothing comes after the @-sign"),
    ("should have a period", "the domain after the @-sign has no period"),
    ("top-level domain", "the domain after the @-sign has no valid top-level domain"),
    ("special-use or reserved", "the domain after the @-sign is reserved"),
    ("too long", "it is too long"),
    ("two periods in a row", "it has two periods in a row"),
    ("character", "it holds characters an e-mail address cannot hold"),
    ("ASCII", "it holds characters an e-mail address cannot hold"),
)


def _email_fault(said: str) -> str:
    return next((ours for phrase, ours in _EMAIL_FAULTS if phrase in said), "it is malformed")


def phone(value: str) -> str:
    cleaned = value.strip()
    if not re.fullmatch(r"\+?[0-9 ()./-]{4,40}", cleaned):
        raise ValueError(f"invalid phone number {value!r}")
    return cleaned


def pgp_key(value: str) -> str:
    cleaned = value.strip()
    if not (
        cleaned.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        and cleaned.endswith("-----END PGP PUBLIC KEY BLOCK-----")
    ):
        raise ValueError("the OpenPGP key must be an ASCII-armoured public key block")
    return cleaned


def prefix(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = value.strip()
    if "%" in text:
        # ipaddress accepts an IPv6 zone index ("fe80::%eth0/64"); it names an interface of
        # one host, not a network, and the lookup tree cannot hold it.
        raise ValueError(f"invalid IP prefix {value!r}: a zone index (%...) has no place here")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            network = ipaddress.ip_network(text, strict=False)
            raise ValueError(
                f"invalid prefix {value!r}: host bits are set (did you mean {network}?)"
            ) from None
        raise ValueError(f"invalid IP prefix {value!r}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        v4 = ipaddress.IPv4Network(
            (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96)
        )
        raise ValueError(
            f"invalid prefix {value!r}: an IPv4-mapped IPv6 prefix; give the IPv4 prefix {v4}"
        )
    return network


def asn(value: str | int) -> int:
    text = str(value).strip().upper().removeprefix("AS")
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"invalid AS number {value!r}: use digits, optionally after 'AS'")
    number = int(text)
    if not 1 <= number <= MAX_ASN:
        raise ValueError(f"invalid AS number {value!r}: must be between 1 and {MAX_ASN}")
    return number


def domain(value: str) -> str:
    text = value.strip().rstrip(".").lower()
    if text.startswith("*."):
        text = text[2:]  # a wildcard means the same as the domain: sub-domains are covered
    if not text:
        raise ValueError(f"invalid domain {value!r}")
    try:
        ascii_name = to_ascii(text)
    except UnicodeError:
        raise ValueError(f"invalid domain {value!r}: not a valid internationalised name") from None
    if len(ascii_name) > 253:
        raise ValueError(f"invalid domain {value!r}: longer than 253 characters")
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(LABEL_RE.match(label) for label in labels):
        raise ValueError(f"invalid domain {value!r}: needs at least two valid labels")
    if labels[-1].isdigit():
        raise ValueError(f"invalid domain {value!r}: an IP address is not a domain")
    return ascii_name


def to_ascii(name: str) -> str:
    """The ASCII (A-label) form of a lower-case domain name under IDNA 2008 with the UTS #46
    mapping, non-transitional as browsers and registries use it: "faß.de" stays distinct
    from "fass.de". ASCII labels pass unchanged. Raises UnicodeError."""
    if name.isascii():
        return name
    mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
    return ".".join(
        label if label.isascii() else idna.alabel(label).decode("ascii")
        for label in mapped.split(".")
    )


def software(value: str, version: str = "") -> tuple[str, str]:
    """A purl or a CPE 2.3 formatted string; returns (canonical name, version)."""
    text = value.strip()
    if text.startswith("pkg:"):
        try:
            purl = PackageURL.from_string(text)
        except ValueError as exc:
            raise ValueError(f"invalid package URL {value!r}: {exc}") from None
        purl_version = purl.version or ""
        if version and purl_version and version != purl_version:
            raise ValueError(
                f"version {version!r} contradicts the version {purl_version!r} in the purl"
            )
        base = PackageURL(
            type=purl.type,
            namespace=purl.namespace,
            name=purl.name,
            qualifiers=purl.qualifiers,
            subpath=purl.subpath,
        ).to_string()
        return base, version or purl_version
    if text.startswith("cpe:2.3:"):
        if not CPE23_RE.fullmatch(text):
            raise ValueError(
                f"invalid CPE 2.3 name {value!r}: expected 13 colon-separated fields of letters,"
                " digits, - . _ and backslash-quoted punctuation"
            )
        parts = _split_cpe(text)
        cpe_version = _CPE_QUOTED.sub(r"\1", parts[5]) if parts[5] not in ("*", "-") else ""
        if version and cpe_version and version != cpe_version:
            raise ValueError(
                f"version {version!r} contradicts the version {cpe_version!r} in the CPE"
            )
        # Like a purl, the canonical name leaves the version out: it lives in its own column,
        # so one product is one name whichever way the version was given.
        if cpe_version:
            parts[5] = "*"
        return ":".join(parts).lower(), version or cpe_version
    raise ValueError(
        f"invalid software {value!r}: give a package URL (pkg:...) or a CPE 2.3 name (cpe:2.3:...)"
    )


_CPE_QUOTED = re.compile(r"\\(.)")


def _split_cpe(text: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def asset_kind(value: str, asset_value: str) -> AssetKind:
    """The kind column may be left empty or say 'prefix'/'ip': then it is detected."""
    text = (value or "").strip().lower().replace("_", "-")
    aliases = {
        "ipv4": AssetKind.IPV4_PREFIX,
        "ipv6": AssetKind.IPV6_PREFIX,
        "email": AssetKind.EMAIL_DOMAIN,
        "mail-domain": AssetKind.EMAIL_DOMAIN,
        "purl": AssetKind.SOFTWARE,
        "cpe": AssetKind.SOFTWARE,
        "as": AssetKind.ASN,
    }
    if text in aliases:
        return aliases[text]
    if text in ("", "prefix", "ip", "network", "cidr"):
        candidate = asset_value.strip()
        if text == "" and candidate.startswith(("pkg:", "cpe:")):
            return AssetKind.SOFTWARE
        digits = candidate[2:]
        if text == "" and candidate[:2].upper() == "AS" and digits.isascii() and digits.isdigit():
            return AssetKind.ASN
        try:
            net = ipaddress.ip_network(candidate, strict=False)
            return AssetKind.IPV4_PREFIX if net.version == 4 else AssetKind.IPV6_PREFIX
        except ValueError:
            if text:
                raise ValueError(f"invalid IP prefix {asset_value!r}") from None
        return AssetKind.DOMAIN
    try:
        return AssetKind(text)
    except ValueError:
        kinds = ", ".join(k.value for k in AssetKind)
        raise ValueError(f"unknown asset kind {value!r}; use one of {kinds}") from None
