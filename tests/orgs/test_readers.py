"""The pure asset readers: bytes in, canonical rows and located errors out."""

from __future__ import annotations

import codecs
import csv
import io
import ipaddress
import json
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from concord.orgs import readers
from concord.orgs.model import AssetKind
from concord.orgs.readers import AssetRow, RowError
from tests.conftest import FIXTURES, SHARED_DATA

ASSETS = FIXTURES / "assets"

# What kz-bank-inventory.csv and kz-bank-inventory.json both hold, in canonical form.
INVENTORY = {
    ("ipv4-prefix", "192.0.2.0/24", "", "Head office network"),
    ("ipv4-prefix", "198.51.100.0/25", "", "Branch offices"),
    ("ipv6-prefix", "2001:db8:200::/48", "", "Data centre"),
    ("asn", "AS64501", "", "Upstream autonomous system"),
    ("domain", "steppe-bank.example", "", "Public web site"),
    ("domain", "portal.steppe-bank.example", "", "All sub-domains of the portal"),
    ("domain", "xn----8sbcoujqeeium.example", "", "Russian-language site"),
    ("email-domain", "mail.steppe-bank.example", "", "Staff mail"),
    (
        "software",
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind?type=jar",
        "2.10.0",
        "Core banking, Java back end",
    ),
    ("software", "pkg:npm/minimist", "0.0.8", "Web client build tools"),
    (
        "software",
        "pkg:golang/github.com/ProtonMail/go-crypto",
        "v0.0.0-20201208171014-cdb7591792e2",
        "VPN client",
    ),
    ("software", "cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*", "2.14.1", "Logging library"),
    ("software", "cpe:2.3:a:apache:http_server:*:*:*:*:*:*:*:*", "2.4.57", "Reverse proxy"),
}


def split(items: Iterable[AssetRow | RowError]) -> tuple[list[AssetRow], list[RowError]]:
    rows: list[AssetRow] = []
    errors: list[RowError] = []
    for item in items:
        assert isinstance(item, AssetRow | RowError), item
        (rows if isinstance(item, AssetRow) else errors).append(item)
    return rows, errors


def located(item: AssetRow | RowError, source: str) -> bool:
    """Everything a reader yields says where it comes from: the file and a line or pointer."""
    loc = item.location
    return loc.source == source and (loc.line is not None or loc.pointer is not None)


def canonical(rows: Iterable[AssetRow]) -> set[tuple[str, str, str, str]]:
    return {(r.kind.value, r.value, r.version, r.description) for r in rows}


def read_csv(text: str | bytes, source: str = "assets.csv") -> tuple[list, list]:
    data = text.encode() if isinstance(text, str) else text
    return split(readers.read_csv(data, source))


def read_json(doc: object, source: str = "assets.json") -> tuple[list, list]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return split(readers.read_json(data, source))


def lines(errors: list[RowError]) -> list[int | None]:
    return [e.location.line for e in errors]


# --- fixtures ------------------------------------------------------------------------------


def test_inventory_csv_and_json_read_to_the_same_canonical_rows() -> None:
    csv_rows, csv_errors = split(
        readers.read((ASSETS / "kz-bank-inventory.csv").read_bytes(), "kz-bank-inventory.csv")
    )
    json_rows, json_errors = split(
        readers.read((ASSETS / "kz-bank-inventory.json").read_bytes(), "kz-bank-inventory.json")
    )
    assert csv_errors == [] and json_errors == []
    assert canonical(csv_rows) == INVENTORY
    assert canonical(json_rows) == INVENTORY
    assert [r.location.line for r in csv_rows] == list(range(2, 15))
    assert [r.location.pointer for r in json_rows] == [f"/assets/{i}" for i in range(13)]


def test_prefix_rows_carry_their_numeric_bounds() -> None:
    rows, _ = read_csv("value\n192.0.2.0/24\n2001:db8::/32\nAS64500\n")
    v4, v6, asn = rows
    assert (v4.range_start, v4.range_end) == (
        readers.pad(int(ipaddress.ip_address("192.0.2.0"))),
        readers.pad(int(ipaddress.ip_address("192.0.2.255"))),
    )
    assert len(v4.range_start or "") == 39 and (v4.range_start or "") < (v6.range_start or "")
    assert v6.range_end == readers.pad((0x20010DB8 << 96) | ((1 << 96) - 1))
    assert (asn.asn, asn.range_start) == (64500, None)


def test_broken_csv_fixture_reports_each_bad_row_with_its_line() -> None:
    rows, errors = split(
        readers.read((ASSETS / "kz-bank-broken.csv").read_bytes(), "kz-bank-broken.csv")
    )
    assert [r.location.line for r in rows] == [2, 5, 10, 11]  # 11 is a duplicate: see import
    by_line = {e.location.line: e.reason for e in errors}
    assert sorted(by_line) == [3, 4, 6, 7, 8, 12]
    assert "did you mean 192.0.2.0/24?" in by_line[3]
    assert "needs at least two valid labels" in by_line[4]
    assert "contradicts the version '0.0.8'" in by_line[6]
    assert "between 1 and 4294967295" in by_line[7]
    assert by_line[8] == "expected 4 fields, found 2"
    assert "unknown asset kind 'colour'" in by_line[12]
    assert all(e.location.source == "kz-bank-broken.csv" for e in errors)
    assert errors[0].as_dict() == {
        "source": "kz-bank-broken.csv",
        "line": 3,
        "reason": errors[0].reason,
    }


def test_broken_json_fixture_reports_json_pointers() -> None:
    rows, errors = split(
        readers.read((ASSETS / "kz-bank-broken.json").read_bytes(), "kz-bank-broken.json")
    )
    assert [r.location.pointer for r in rows] == ["/assets/0", "/assets/6"]
    reasons = {e.location.pointer: e.reason for e in errors}
    assert reasons == {
        "/assets/1": "invalid domain '42': needs at least two valid labels",
        "/assets/2": "each asset must be an object",
        "/assets/3": "value must be text",
        "/assets/4": "unknown key(s) owner",
        "/assets/5": "version must be text",  # true is not a version
    }
    assert str(errors[2].location) == "kz-bank-broken.json:/assets/3"


# --- CSV -----------------------------------------------------------------------------------


def test_csv_header_in_any_order_and_case() -> None:
    rows, errors = read_csv(
        " Description ,VERSION,Value,Kind\r\n"
        "Logging,2.14.1,cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*,software\r\n"
    )
    assert errors == []
    assert canonical(rows) == {
        ("software", "cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*", "2.14.1", "Logging")
    }


def test_csv_with_only_a_value_column_detects_kinds() -> None:
    rows, errors = read_csv("value\n192.0.2.0/24\nAS64500\nexample.org\npkg:npm/minimist@0.0.8\n")
    assert errors == []
    assert [r.kind for r in rows] == [
        AssetKind.IPV4_PREFIX,
        AssetKind.ASN,
        AssetKind.DOMAIN,
        AssetKind.SOFTWARE,
    ]


def test_csv_with_a_byte_order_mark() -> None:
    data = codecs.BOM_UTF8 + b"kind,value\r\ndomain,example.org\r\n"
    rows, errors = read_csv(data)
    assert errors == [] and canonical(rows) == {("domain", "example.org", "", "")}
    assert rows[0].location.line == 2
    # read() sniffs a JSON document behind a BOM too
    json_data = codecs.BOM_UTF8 + b'[{"value": "example.org"}]'
    rows, errors = split(readers.read(json_data, "upload"))
    assert errors == [] and rows[0].location.pointer == "/0"


def test_csv_blank_lines_are_skipped_and_lines_still_count() -> None:
    text = "\n\nkind,value\n\ndomain,example.org\n  ,  \n\ndomain,bad_label.example\n\n"
    rows, errors = read_csv(text)
    assert [r.location.line for r in rows] == [5]
    assert lines(errors) == [8]


def test_csv_wrong_field_count_is_reported_with_its_line() -> None:
    text = "kind,value,version\ndomain,example.org,\ndomain,example.net\ndomain,a.example,,x\n"
    rows, errors = read_csv(text)
    assert len(rows) == 1
    assert [(e.location.line, e.reason) for e in errors] == [
        (3, "expected 3 fields, found 2"),
        (4, "expected 3 fields, found 4"),
    ]


def test_csv_multi_line_field_keeps_line_numbers_right() -> None:
    text = (
        "value,description\n"
        'example.org,"two\nlines"\n'
        'bad value,"three\r\nlines\nhere"\n'
        "example.net,\n"
    )
    rows, errors = read_csv(text)
    assert [r.location.line for r in rows] == [2, 7]
    assert rows[0].description == "two\nlines"
    assert lines(errors) == [4]  # where the bad row starts, not where it ends


def test_csv_stray_quote_is_malformed() -> None:
    text = 'kind,value,description\ndomain,example.org,ok\ndomain,"example.net"x,stray\n'
    rows, errors = read_csv(text)
    assert len(rows) == 1
    assert lines(errors) == [3]
    assert errors[0].reason.startswith("malformed CSV:")


def test_csv_unterminated_quote_does_not_swallow_the_rows_after_it() -> None:
    # Without strict quoting the description below would silently absorb the next two rows.
    text = (
        "kind,value,description\n"
        'domain,example.org,"Head office\n'
        "domain,example.net,Branch\n"
        "domain,example.com,Shop\n"
    )
    rows, errors = read_csv(text)
    assert rows == []
    assert lines(errors) == [2]
    assert "malformed CSV" in errors[0].reason


def test_csv_malformed_header() -> None:
    _, errors = read_csv('"kind,value\ndomain,example.org\n')
    assert lines(errors) == [1] and "malformed CSV" in errors[0].reason


def test_csv_not_utf8_names_the_line_of_the_bad_byte() -> None:
    data = b"kind,value,description\ndomain,example.org,Head office\n"
    data += "domain,example.net,Филиал\n".encode("cp1251")
    rows, errors = read_csv(data)
    assert rows == []
    assert lines(errors) == [3]
    assert errors[0].reason.startswith("not UTF-8 text") and "save the file as UTF-8" in (
        errors[0].reason
    )
    _, errors = read_csv("value\nexample.org\n".encode("utf-16"))
    assert lines(errors) == [1] and "not UTF-8" in errors[0].reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("kind,value,owner", "unknown column(s) 'owner'; use kind, value, version, description"),
        ("kind,value,", "unknown column(s) ''"),
        ("kind,description", "the header must name a 'value' column"),
        ("value,kind,Value", "column(s) value appear more than once"),
    ],
)
def test_csv_header_problems(header: str, reason: str) -> None:
    rows, errors = read_csv(f"\n{header}\ndomain,example.org,x\n")
    assert rows == []
    assert lines(errors) == [2]  # the header's own line, after a blank one
    assert errors[0].reason.startswith(reason)


def test_csv_empty_file_and_header_only() -> None:
    for data in (b"", codecs.BOM_UTF8, b"\n\r\n  \n"):
        _, errors = read_csv(data)
        assert [(e.location.line, e.reason) for e in errors] == [(1, "the file is empty")]
    assert read_csv("kind,value\n") == ([], [])


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("domain,", "the value is empty"),
        ("domain,   ", "the value is empty"),
        (f"domain,{'a' * 500}.example", "a field is too long"),
        ("ipv4-prefix,2001:db8::/32", "is an IPv6 prefix, not ipv4-prefix"),
        ("ipv6,192.0.2.0/24", "is an IPv4 prefix, not ipv6-prefix"),
        ("domain,example\x00.org", "the value contains a NUL character"),
        ("ipv4-prefix,0.0.0.0/0", "too wide to be one organisation's"),
        ("ipv6-prefix,2000::/3", "IPv6 prefixes from /16 on"),
    ],
)
def test_csv_row_refusals(row: str, reason: str) -> None:
    rows, errors = read_csv(f"kind,value\n{row}\n")
    assert rows == []
    assert lines(errors) == [2] and reason in errors[0].reason


def test_csv_fields_are_trimmed_and_versions_dropped_where_meaningless() -> None:
    rows, _ = read_csv(
        "kind,value,version,description\n ipv4 , 192.0.2.0/24 ,1.0,  Head office  \n"
    )
    assert canonical(rows) == {("ipv4-prefix", "192.0.2.0/24", "", "Head office")}


# --- JSON ----------------------------------------------------------------------------------


def test_json_array_and_assets_object() -> None:
    items = [{"value": "192.0.2.0/24"}, {"kind": "asn", "value": 64500}]
    rows, errors = read_json(items)
    assert errors == [] and [r.location.pointer for r in rows] == ["/0", "/1"]
    assert [r.value for r in rows] == ["192.0.2.0/24", "AS64500"]
    rows, errors = read_json({"assets": items, "generator": "inventory tool"})
    assert errors == [] and [r.location.pointer for r in rows] == ["/assets/0", "/assets/1"]


def test_json_empty_array_is_no_rows() -> None:
    assert read_json([]) == ([], [])
    assert read_json({"assets": []}) == ([], [])


def test_malformed_json_names_the_line() -> None:
    data = b'[\n  {"value": "example.org"},\n  {"value": "example.net"\n]\n'
    rows, errors = read_json(data)
    assert rows == []
    assert lines(errors) == [4] and errors[0].reason.startswith("malformed JSON:")


def test_json_wrong_types_name_the_json_pointer() -> None:
    doc = {
        "assets": [
            {"value": "example.org"},
            {"value": "example.net", "description": {"text": "nested"}},
            {"value": None},
            {"kind": "asn", "value": 64500.0},
            {"value": True},
            7,
        ]
    }
    rows, errors = read_json(doc)
    assert [r.location.pointer for r in rows] == ["/assets/0"]
    assert [(e.location.pointer, e.reason) for e in errors] == [
        ("/assets/1", "description must be text"),
        ("/assets/2", "the value is empty"),
        ("/assets/3", "value must be text"),
        ("/assets/4", "value must be text"),
        ("/assets/5", "each asset must be an object"),
    ]


@pytest.mark.parametrize("doc", [{"items": []}, {"assets": "none"}, "example.org", 42, None])
def test_json_of_the_wrong_shape(doc: object) -> None:
    rows, errors = read_json(doc)
    assert rows == []
    assert [(e.location.pointer, e.reason) for e in errors] == [
        ("", 'expected an array of assets or an object {"assets": [...]}')
    ]


def test_json_nested_too_deep() -> None:
    data = b'{"assets": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    rows, errors = read_json(data)
    assert rows == []
    assert [(e.location.pointer, e.reason) for e in errors] == [("", "JSON nested too deeply")]


def test_json_number_too_long_is_an_error_not_a_crash() -> None:
    # int() refuses more than 4300 digits with a plain ValueError, not a JSONDecodeError.
    data = b'[{"kind": "asn", "value": ' + b"9" * 5000 + b"}]"
    rows, errors = read_json(data)
    assert rows == [] and len(errors) == 1
    assert errors[0].location.pointer == "" and errors[0].reason.startswith("malformed JSON")


def test_json_not_utf8() -> None:
    data = '[\n{"value": "example.org", "description": "Филиал"}]'.encode("cp1251")
    rows, errors = read_json(data)
    assert rows == [] and lines(errors) == [2] and "not UTF-8" in errors[0].reason


@pytest.mark.parametrize(
    ("escaped", "reason"),
    [
        ("\\u0000", "contains a NUL character"),
        ("\\ud800", "is not valid Unicode text (unpaired surrogate)"),
    ],
)
def test_json_text_no_database_can_store_is_refused(escaped: str, reason: str) -> None:
    data = f'[{{"value": "example.org", "description": "x{escaped}y"}}]'.encode()
    rows, errors = read_json(data)
    assert rows == []
    assert errors[0].location.pointer == "/0" and f"the description {reason}" in errors[0].reason


def test_a_cyclonedx_sbom_is_not_an_asset_list() -> None:
    data = (ASSETS / "not-an-asset-list.cdx.json").read_bytes()
    rows, errors = split(readers.read(data, "bom.json"))
    assert rows == [] and [e.location.pointer for e in errors] == [""]


# --- choosing the reader -------------------------------------------------------------------


def test_read_picks_the_reader() -> None:
    csv_data = b"value\nexample.org\n"
    json_data = b'[{"value": "example.org"}]'
    assert split(readers.read(csv_data, "a.CSV"))[0][0].location.line == 2
    assert split(readers.read(json_data, "a.json"))[0][0].location.pointer == "/0"
    assert split(readers.read(json_data, "upload"))[0][0].location.pointer == "/0"
    assert split(readers.read(b"  \n" + json_data, "upload"))[0][0].location.pointer == "/0"
    assert split(readers.read(csv_data, "upload"))[0][0].location.line == 2
    assert split(readers.read(json_data, "a.csv", "JSON"))[0][0].location.pointer == "/0"
    _, errors = split(readers.read(csv_data, "a.xlsx", "xlsx"))
    assert [e.reason for e in errors] == ["unknown asset file format 'xlsx'; use csv or json"]
    assert errors[0].location.source == "a.xlsx"


# --- properties ----------------------------------------------------------------------------

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seed_files() -> list[bytes]:
    """Real files to start the fuzzing from: ours, and real CycloneDX SBOMs when present."""
    paths = sorted(p for p in ASSETS.iterdir() if p.suffix in (".csv", ".json"))
    paths += sorted((FIXTURES / "sbom" / "cyclonedx").glob("*.json"))
    # Samples without a stated licence are read in place when the shared folder is there.
    wild = SHARED_DATA / "sbom" / "cyclonedx" / "bom-shelter__ascii-boxes-sbom-cdx.json"
    if wild.exists():
        paths.append(wild)
    return [p.read_bytes() for p in paths]


def _check_never_raises(data: bytes) -> None:
    for name in ("fuzz.csv", "fuzz.json", "fuzz"):
        for item in readers.read(data, name):
            assert isinstance(item, AssetRow | RowError)
            assert located(item, name), item
            if isinstance(item, RowError):
                assert item.reason and isinstance(item.reason, str)
            else:
                # A row is canonical: reading its own values again gives it back unchanged.
                again = readers.normalise(
                    item.kind.value, item.value, item.version, item.description, item.location
                )
                assert again == item


def _with_seeds(test):  # type: ignore[no-untyped-def]
    for seed in _seed_files():
        test = example(seed)(test)
        test = example(seed[: len(seed) // 2])(test)  # cut off mid-way
        test = example(seed.replace(b",", b'"', 3))(test)
    return test


@FAST
@given(st.binary(max_size=2048))
@_with_seeds
@example(b"\x00" * 10)
@example(codecs.BOM_UTF8 + b"value\n\xff\xfe")
@example(b"[" * 5000)
def test_readers_never_raise_on_arbitrary_bytes(data: bytes) -> None:
    _check_never_raises(data)


CSV_ALPHABET = st.sampled_from(
    [*"kindvaluesroptd,\"'\n\r\t .:/@*-_\\%", "192.0.2.0/24", "AS64500", "\x00", "é", "\ud7ff"]
)


@FAST
@given(st.lists(CSV_ALPHABET, max_size=80).map("".join))
def test_readers_never_raise_on_csv_like_text(text: str) -> None:
    _check_never_raises(("kind,value,version,description\n" + text).encode("utf-8"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["192.0.2.0/24", "AS64500", "example.org", "pkg:npm/x@1", "domain"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["kind", "value", "version", "description", "assets", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@FAST
@given(json_values)
def test_readers_never_raise_on_json_documents(doc: object) -> None:
    _check_never_raises(json.dumps(doc).encode())


# Generated valid assets: (kind column, value as written, expected kind, canonical value).
Asset = tuple[str, str, str, str, str, str]  # kind, value, version, description, kind, value

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
TLD = st.from_regex(r"[a-z][a-z0-9]{1,8}", fullmatch=True)
DESCRIPTION = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
).map(str.strip)


@st.composite
def ipv4_assets(draw: st.DrawFn) -> Asset:
    address = draw(st.ip_addresses(v=4))
    net = ipaddress.ip_network(f"{address}/{draw(st.integers(8, 32))}", strict=False)  # /8 on
    kind = draw(st.sampled_from(["", "ipv4-prefix", "ipv4", "prefix"]))
    return kind, str(net), "", draw(DESCRIPTION), "ipv4-prefix", str(net)


@st.composite
def ipv6_assets(draw: st.DrawFn) -> Asset:
    address = draw(st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None))
    net = ipaddress.ip_network(f"{address}/{draw(st.integers(16, 128))}", strict=False)  # /16 on
    if net.subnet_of(ipaddress.IPv6Network("::ffff:0:0/96")):
        net = ipaddress.ip_network("2001:db8::/32")
    written = draw(st.sampled_from([str(net), net.exploded, str(net).upper()]))
    kind = draw(st.sampled_from(["", "ipv6-prefix", "ipv6", "cidr"]))
    return kind, written, "", draw(DESCRIPTION), "ipv6-prefix", str(net)


@st.composite
def asn_assets(draw: st.DrawFn) -> Asset:
    number = draw(st.integers(1, 4_294_967_295))
    kind, written = draw(
        st.sampled_from([("", f"AS{number}"), ("asn", f"as{number}"), ("as", str(number))])
    )
    return kind, written, "", draw(DESCRIPTION), "asn", f"AS{number}"


@st.composite
def domain_assets(draw: st.DrawFn) -> Asset:
    name = ".".join([*draw(st.lists(LABEL, min_size=1, max_size=3)), draw(TLD)])
    written = draw(st.sampled_from([name, name.upper(), f"{name}.", f"*.{name}"]))
    kind = draw(st.sampled_from(["", "domain", "email-domain", "email"]))
    expected = "email-domain" if kind.startswith("email") else "domain"
    return kind, written, "", draw(DESCRIPTION), expected, name


@st.composite
def purl_assets(draw: st.DrawFn) -> Asset:
    ptype = draw(st.sampled_from(["npm", "generic", "cargo", "gem", "nuget", "maven", "golang"]))
    name = draw(st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True))
    namespace = draw(st.none() | st.from_regex(r"[a-z][a-z0-9.]{0,10}", fullmatch=True))
    if ptype == "maven" and namespace is None:
        namespace = "org.example"
    version = draw(st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True))
    base = f"pkg:{ptype}/{namespace + '/' if namespace else ''}{name}"
    in_purl = draw(st.booleans())
    written = f"{base}@{version}" if in_purl else base
    column = draw(st.sampled_from([version, ""])) if in_purl else version
    kind = draw(st.sampled_from(["", "software", "purl"]))
    return kind, written, column, draw(DESCRIPTION), "software", base


@st.composite
def cpe_assets(draw: st.DrawFn) -> Asset:
    vendor, product = draw(st.lists(LABEL.map(lambda s: s.replace("-", "_")), min_size=2))[:2]
    version = draw(st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True))
    cpe = f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*"
    kind = draw(st.sampled_from(["", "software", "cpe"]))
    canonical = f"cpe:2.3:a:{vendor}:{product}:*:*:*:*:*:*:*:*"
    return kind, cpe, draw(st.sampled_from([version, ""])), draw(DESCRIPTION), "software", canonical


ASSET = st.one_of(
    ipv4_assets(), ipv6_assets(), asn_assets(), domain_assets(), purl_assets(), cpe_assets()
)


def to_csv(assets: list[Asset]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["value", "kind", "description", "version"])
    for kind, value, version, description, _, _ in assets:
        writer.writerow([value, kind, description, version])
    return out.getvalue().encode()


def to_json(assets: list[Asset]) -> bytes:
    items = [
        {"kind": k, "value": v, "version": ver, "description": d} for k, v, ver, d, _, _ in assets
    ]
    return json.dumps({"assets": items}, ensure_ascii=False).encode()


@FAST
@given(st.lists(ASSET, max_size=25))
def test_round_trip_through_csv_and_json(assets: list[Asset]) -> None:
    csv_rows, csv_errors = split(readers.read(to_csv(assets), "generated.csv"))
    json_rows, json_errors = split(readers.read(to_json(assets), "generated.json"))
    assert csv_errors == [] and json_errors == []
    expected = [(kind, value, description) for _, _, _, description, kind, value in assets]
    for rows in (csv_rows, json_rows):
        assert [(r.kind.value, r.value, r.description) for r in rows] == expected
    assert [(r.key, r.description, r.range_start, r.range_end, r.asn) for r in csv_rows] == [
        (r.key, r.description, r.range_start, r.range_end, r.asn) for r in json_rows
    ]
    assert [r.location.pointer for r in json_rows] == [f"/assets/{i}" for i in range(len(assets))]
    # Written again in canonical form, the rows read back unchanged (a fixed point).
    canonical_assets = [
        (r.kind.value, r.value, r.version, r.description, r.kind.value, r.value) for r in csv_rows
    ]
    again, errors = split(readers.read(to_csv(canonical_assets), "again.csv"))
    assert errors == []
    assert [(r.key, r.description) for r in again] == [(r.key, r.description) for r in csv_rows]


BAD_VALUES = st.sampled_from(
    [
        "192.0.2.1/24",
        "localhost",
        "AS0",
        "pkg:npm",
        "cpe:2.3:a:x",
        "under_score.example",
        "10.0.0.0/33",
    ]
)


@st.composite
def csv_with_bad_rows(draw: st.DrawFn) -> tuple[bytes, list[int], list[int]]:
    """A CSV file of good and bad rows, blank lines and multi-line descriptions, with the
    first line of every good and every bad row."""
    text = "kind,value,description\r\n"
    good: list[int] = []
    bad: list[int] = []
    for _ in range(draw(st.integers(0, 20))):
        text += draw(st.sampled_from(["", "", "\n", "\r\n", " , ,\n"]))
        line = len(io.StringIO(text, newline="").readlines()) + 1
        description = draw(st.sampled_from(["", "plain", "two\nlines", 'a "quoted"\r\nnote']))
        out = io.StringIO(newline="")
        shape = draw(st.sampled_from(["good", "bad value", "short", "long"]))
        if shape == "good":
            value = draw(domain_assets())[5]
            csv.writer(out).writerow(["", value, description])
            good.append(line)
        elif shape == "bad value":
            csv.writer(out).writerow(["", draw(BAD_VALUES), description])
            bad.append(line)
        elif shape == "short":
            csv.writer(out).writerow(["domain", "example.org"])
            bad.append(line)
        else:
            csv.writer(out).writerow(["domain", "example.org", description, "extra"])
            bad.append(line)
        text += out.getvalue()
    return text.encode(), good, bad


@FAST
@given(csv_with_bad_rows())
def test_csv_errors_point_at_the_bad_rows(case: tuple[bytes, list[int], list[int]]) -> None:
    data, good, bad = case
    rows, errors = split(readers.read_csv(data, "lines.csv"))
    assert [r.location.line for r in rows] == good
    assert [e.location.line for e in errors] == bad
    # and the line really is where that row starts in the file
    physical = data.decode().replace("\r\n", "\n").split("\n")
    for e in errors:
        assert physical[(e.location.line or 0) - 1].strip(" ,") != ""


def test_the_fuzzing_seeds_include_the_fixtures() -> None:
    seeds = _seed_files()
    for name in ("kz-bank-inventory.csv", "kz-bank-broken.csv", "kz-bank-broken.json"):
        assert (ASSETS / name).read_bytes() in seeds
