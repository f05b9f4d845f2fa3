"""The built-in CSV feed profiles: Shadowserver reports and other public feeds.

Readers: `READER` ("shadowserver") picks the Shadowserver profile that fits a file by its
report name or header; `CSV_READER` ("csv") picks any built-in profile in `PROFILES`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType

from concord.intake.readers.csvfeed import (
    ColumnMap,
    CsvProfile,
    ProfileChoosingReader,
    ReportClass,
)

# ---------------------------------------------------------------------------------------------
# Shadowserver: https://www.shadowserver.org/what-we-do/network-reporting/ (the report types
# and their field names), and Shadowserver's report_schema for the file naming.

# The scan reports by what they find, as "service" or "service=application protocol"
# ("service=" for none); the report is "scan_<service>" (IPv4) or "scan6_<service>" (IPv6).
_SCAN_TABLE = {
    # UDP services that answer a small query with a large reply
    ReportClass("vulnerable", "ddos-amplifier"): """
        chargen qotd ntp ntpmonitor=ntp ssdp snmp mdns memcached dns portmapper netbios
        ldap_udp=ldap mssql ubiquiti=ubiquiti-discovery ws_discovery=ws-discovery xdmcp
        dvr_dhcpdiscover=dhcpdiscover coap ard rdpeudp=rdp ddos_middlebox= loop_dos= slp db2
        stun tftp sip
    """,
    # services that should not face the Internet
    ReportClass("vulnerable", "potentially-unwanted-accessible"): """
        rdp ssh telnet smb vnc elasticsearch mongodb redis couchdb mysql postgres=postgresql
        docker kubernetes hadoop adb afp amqp activemq mqtt mqtt_anon=mqtt ftp cwmp ics= ipp
        ldap_tcp=ldap msrpc radmin rsync socks http_proxy=http-proxy
        cisco_smart_install=smart-install epmd bgp mikrotik_service=mikrotik ipmi ip_tunnel=
        http ssl=tls smtp imap pop3 quic gtp
    """,
    ReportClass("vulnerable", "weak-crypto"): "ssl_poodle=tls ssl_freak=tls",
    ReportClass("vulnerable", "vulnerable-system"): """
        http_vulnerable=http exchange=http smtp_vulnerable=smtp imap_vulnerable=imap
        pop3_vulnerable=pop3 isakmp nat_pmp=nat-pmp badsecrets=http netis_router=
    """,
    # a router running the SYNful Knock implant is compromised, not merely vulnerable
    ReportClass("intrusions", "system-compromise"): "synfulknock=",
    ReportClass("malicious-code", "c2-server"): "post_exploitation_framework=",
}


def _scan_services() -> dict[str, ReportClass]:
    services = {}
    for kind, table in _SCAN_TABLE.items():
        for item in table.split():
            service, named, application = item.partition("=")
            services[service] = kind._replace(
                application=(application if named else service) or None
            )
    return services


_SERVICES = _scan_services()
_SCAN_REPORTS = MappingProxyType(
    {
        **{f"scan_{service}": kind for service, kind in _SERVICES.items()},
        "dns_openresolver": ReportClass("vulnerable", "ddos-amplifier", "dns"),
    }
)
# Without a file name the tag column ("rdp", "ssh", "basic-auth,http") is the best guess.
_SCAN_TAGS = MappingProxyType({s: (k.rsit_class, k.rsit_type) for s, k in _SERVICES.items()})
_INFECTED = ("malicious-code", "infected-system")
_GEO_EXTRA = ("hostname", "geo", "region", "city", "naics", "sector", "severity")

SHADOWSERVER_SCAN = CsvProfile(
    name="shadowserver-scan",
    description="Shadowserver scan reports (scan_*, scan6_*): vulnerable or exposed services",
    feed="shadowserver:scan",
    required_columns=("timestamp", "ip", "port", "tag|protocol"),
    file_names=("scan_*", "scan6_*", "dns_openresolver"),
    time_column="timestamp",
    fields=(
        ColumnMap("ip", "ip", "source", required=True),
        ColumnMap("asn", "asn", "source"),
        ColumnMap("port", "port"),
        ColumnMap("protocol", "protocol"),
    ),
    rsit_class="vulnerable",
    rsit_type="vulnerable-system",
    classify_column="tag",
    classify_map=_SCAN_TAGS,
    # Where the host is and what it is; the report's own columns stay in raw.
    extra=(*_GEO_EXTRA, "tag", "public_source", "device_vendor", "device_type", "device_model"),
    report_prefix="shadowserver:",
    ragged=True,
    reports=_SCAN_REPORTS,
)

_SINKHOLE_EXTRA = (
    *("src_port", "src_hostname", "src_geo", "src_region", "src_city", "src_naics", "src_sector"),
    *("dst_asn", "dst_geo", "device_vendor", "device_type", "device_model", "public_source"),
    *("infection", "family", "tag", "version", "event_id", "http_url", "http_agent"),
    *("forwarded_by", "ssl_cipher", "http_referer", "severity"),
)

SHADOWSERVER_SINKHOLE = CsvProfile(
    name="shadowserver-sinkhole",
    description="Shadowserver sinkhole events (event4_sinkhole*, event6_sinkhole*): infected hosts",
    feed="shadowserver:sinkhole",
    required_columns=("timestamp", "src_ip", "dst_ip"),
    file_names=(
        "event4_sinkhole",
        "event4_sinkhole_http",
        "event6_sinkhole",
        "event6_sinkhole_http",
        "event4_microsoft_sinkhole",
        "event4_microsoft_sinkhole_http",
    ),
    time_column="timestamp",
    fields=(
        ColumnMap("src_ip", "ip", "victim", required=True),
        ColumnMap("src_asn", "asn", "victim"),
        ColumnMap("dst_ip", "ip", "destination"),
        ColumnMap("http_host", "domain", "c2"),
        ColumnMap("dst_port", "port"),
        ColumnMap("protocol", "protocol"),
        ColumnMap("application", "application"),
        ColumnMap("infection", "malware"),
        ColumnMap("family", "malware"),
        ColumnMap("tag", "malware"),
    ),
    rsit_class=_INFECTED[0],
    rsit_type=_INFECTED[1],
    extra=_SINKHOLE_EXTRA,
    report_prefix="shadowserver:",
    ragged=True,
)

SHADOWSERVER_SINKHOLE_DNS = CsvProfile(
    name="shadowserver-sinkhole-dns",
    description="Shadowserver sinkhole DNS events (event4_sinkhole_dns): infected hosts",
    feed="shadowserver:event4_sinkhole_dns",
    # no dst_ip: the host asked the sinkhole's name server for a sinkholed name ("query")
    required_columns=("timestamp", "src_ip", "query_type", "query"),
    file_names=("event4_sinkhole_dns",),
    time_column="timestamp",
    fields=(
        ColumnMap("src_ip", "ip", "victim", required=True),
        ColumnMap("src_asn", "asn", "victim"),
        ColumnMap("query", "domain", "c2"),
        ColumnMap("protocol", "protocol"),
        ColumnMap("infection", "malware"),
        ColumnMap("family", "malware"),
        ColumnMap("tag", "malware"),
    ),
    rsit_class=_INFECTED[0],
    rsit_type=_INFECTED[1],
    application="dns",
    extra=(
        *("src_port", "src_hostname", "src_geo", "src_region", "src_city", "src_naics"),
        *("src_sector", "device_vendor", "device_type", "device_model", "public_source"),
        *("infection", "family", "tag", "query_type", "count", "severity"),
    ),
    report_prefix="shadowserver:",
    ragged=True,
)

# The honeypot event reports (event4_honeypot_*) share the sinkhole reports' columns, so the
# header alone would read them as sinkhole events. Each is told by the columns only its
# schema has, or by its file name; there src_ip is the host that came to the honeypot (the
# attacker or scanner), except in the amplification report, where it is the spoofed address:
# the target of the attack.

_HONEYPOT_EXTRA = (
    *("src_port", "src_hostname", "src_geo", "src_region", "src_city", "src_naics", "src_sector"),
    *("dst_asn", "dst_geo", "device_vendor", "device_type", "device_model", "public_source"),
    *("infection", "family", "tag", "version", "event_id", "severity"),
)
_ATTACKER = (
    ColumnMap("src_ip", "ip", "source", required=True),
    ColumnMap("src_asn", "asn", "source"),
    ColumnMap("dst_ip", "ip", "destination"),  # the honeypot or darknet sensor
    ColumnMap("dst_port", "port"),
    ColumnMap("protocol", "protocol"),
    ColumnMap("application", "application"),
    # "infection" names the activity here ("ssh-brute-force", "http-scan"), not a malware
    ColumnMap("family", "malware"),
)


class _EveryValue(Mapping[str, tuple[str, str]]):
    """A classification map for a column whose being filled in is what counts, whatever it
    holds (a CVE identifier): every value but those meaning "none" gives `kind`. The values
    cannot be listed, so it iterates as empty (the engine only looks values up) and equals
    only itself, not every empty mapping."""

    def __init__(self, kind: tuple[str, str], nulls: tuple[str, ...] = ()) -> None:
        self._kind = kind
        self._nulls = frozenset(nulls)

    def __getitem__(self, value: str) -> tuple[str, str]:
        if not value or value in self._nulls:
            raise KeyError(value)
        return self._kind

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return other is self

    __hash__ = object.__hash__


SHADOWSERVER_HONEYPOT_BRUTE_FORCE = CsvProfile(
    name="shadowserver-honeypot-brute-force",
    description="Shadowserver honeypot brute force events (event4_honeypot_brute_force)",
    feed="shadowserver:event4_honeypot_brute_force",
    required_columns=("timestamp", "src_ip", "dst_ip", "username", "password"),
    file_names=("event4_honeypot_brute_force",),
    time_column="timestamp",
    fields=(*_ATTACKER, ColumnMap("payload_md5", "md5", "malware")),
    rsit_class="intrusion-attempts",
    rsit_type="brute-force",
    extra=(
        *_HONEYPOT_EXTRA,
        *("service", "start_time", "end_time", "client_version", "username", "payload_url"),
    ),
    report_prefix="shadowserver:",
    ragged=True,
)

# Darknet traffic is scanning unless the packets' fingerprint names the bot that sent them:
# then the sender is infected. Names not listed here stay scans (zmap, masscan, backscatter).
_DARKNET_BOTS = ("mirai", "mirai-like", "hajime", "mozi", "gafgyt", "bashlite", "satori", "moobot")
_DARKNET_MALWARE = MappingProxyType(dict.fromkeys(_DARKNET_BOTS, _INFECTED))

SHADOWSERVER_HONEYPOT_DARKNET = CsvProfile(
    name="shadowserver-honeypot-darknet",
    description="Shadowserver darknet events (event4_honeypot_darknet): scanners and bots",
    feed="shadowserver:event4_honeypot_darknet",
    # "count" is the one column the darknet schema adds to the sinkhole one
    required_columns=("timestamp", "src_ip", "dst_ip", "count"),
    file_names=("event4_honeypot_darknet",),
    time_column="timestamp",
    fields=_ATTACKER,
    rsit_class="information-gathering",
    rsit_type="scanner",
    classify_column="infection",
    classify_map=_DARKNET_MALWARE,
    extra=(*_HONEYPOT_EXTRA, "count"),
    report_prefix="shadowserver:",
    ragged=True,
)

SHADOWSERVER_HONEYPOT_HTTP_SCAN = CsvProfile(
    name="shadowserver-honeypot-http-scan",
    description="Shadowserver honeypot HTTP scanner events (event4_honeypot_http_scan)",
    feed="shadowserver:event4_honeypot_http_scan",
    required_columns=("timestamp", "src_ip", "dst_ip", "http_url", "http_request_method"),
    file_names=("event4_honeypot_http_scan",),
    time_column="timestamp",
    fields=(
        *_ATTACKER,
        ColumnMap("file_md5", "md5", "malware"),
        ColumnMap("file_sha256", "sha256", "malware"),
    ),
    rsit_class="information-gathering",
    rsit_type="scanner",
    # A request that Shadowserver matched to a vulnerability ("CVE-2021-44228") is an
    # exploitation attempt, not a probe.
    classify_column="vulnerability_id",
    classify_map=_EveryValue(("intrusion-attempts", "exploit"), ("unknown", "none", "n/a", "-")),
    application="http",
    extra=(
        *_HONEYPOT_EXTRA,
        *("pattern", "http_url", "http_agent", "http_request_method", "url_scheme"),
        *("session_tags", "vulnerability_enum", "vulnerability_id", "vulnerability_class"),
        *("vulnerability_score", "vulnerability_severity", "threat_tactic_id"),
        *("threat_technique_id", "target_vendor", "target_product", "target_class"),
    ),
    report_prefix="shadowserver:",
    ragged=True,
)

# The amplifier honeypot saw requests whose source was spoofed to the victim's address:
# src_ip was attacked, not attacking and not infected.
SHADOWSERVER_HONEYPOT_DDOS_AMP = CsvProfile(
    name="shadowserver-honeypot-ddos-amp",
    description="Shadowserver honeypot amplification DDoS events (event4_honeypot_ddos_amp)",
    feed="shadowserver:event4_honeypot_ddos_amp",
    required_columns=("timestamp", "src_ip", "dst_ip", "request", "bytes"),
    file_names=("event4_honeypot_ddos_amp",),
    time_column="timestamp",
    fields=(
        ColumnMap("src_ip", "ip", "target", required=True),
        ColumnMap("src_asn", "asn", "target"),
        ColumnMap("dst_ip", "ip", "destination"),  # the amplifier honeypot
        ColumnMap("dst_port", "port"),  # the service abused: 389 for CLDAP, 123 for NTP
        ColumnMap("protocol", "protocol"),
        ColumnMap("application", "application"),
    ),
    rsit_class="availability",
    rsit_type="ddos",
    extra=(
        *_HONEYPOT_EXTRA,
        *("request", "count", "bytes", "end_time", "duration", "avg_pps", "max_pps"),
    ),
    report_prefix="shadowserver:",
    ragged=True,
)

# The drone reports before 2021: the infected host is "ip", the C&C "cc"/"cc_ip".
SHADOWSERVER_DRONE = CsvProfile(
    name="shadowserver-drone",
    description="Shadowserver botnet drone reports (botnet_drone, drone, infected): legacy",
    feed="shadowserver:botnet_drone",
    required_columns=("timestamp", "ip", "infection", "cc_port"),
    file_names=("botnet_drone", "drone", "infected", "botnet_drone6"),
    time_column="timestamp",
    fields=(
        ColumnMap("ip", "ip", "victim", required=True),
        ColumnMap("asn", "asn", "victim"),
        ColumnMap("cc", "ip", "destination"),
        ColumnMap("cc_ip", "ip", "destination"),
        ColumnMap("cc_dns", "domain", "c2"),
        ColumnMap("cc_port", "port"),
        ColumnMap("type", "protocol"),
        ColumnMap("application", "application"),
        ColumnMap("infection", "malware"),
        ColumnMap("family", "malware"),
    ),
    rsit_class=_INFECTED[0],
    rsit_type=_INFECTED[1],
    extra=(*_GEO_EXTRA, "port", "url", "agent", "cc_asn", "cc_geo", "count", "tag", "family"),
    report_prefix="shadowserver:",
    ragged=True,
)

# The HTTP sinkhole reports before 2021: "type" is the malware.
SHADOWSERVER_SINKHOLE_HTTP_DRONE = CsvProfile(
    name="shadowserver-sinkhole-http-drone",
    description="Shadowserver sinkhole HTTP drone reports (sinkhole_http_drone): legacy",
    feed="shadowserver:sinkhole_http_drone",
    required_columns=("timestamp", "ip", "http_host", "dst_ip", "type"),
    file_names=("sinkhole_http_drone", "sinkhole6_http_drone", "microsoft_sinkhole"),
    time_column="timestamp",
    fields=(
        ColumnMap("ip", "ip", "victim", required=True),
        ColumnMap("asn", "asn", "victim"),
        ColumnMap("dst_ip", "ip", "destination"),
        ColumnMap("http_host", "domain", "c2"),
        ColumnMap("dst_port", "port"),
        ColumnMap("type", "malware"),
    ),
    rsit_class=_INFECTED[0],
    rsit_type=_INFECTED[1],
    extra=(*_GEO_EXTRA, "src_port", "url", "http_agent", "http_referer", "dst_asn", "dst_geo"),
    report_prefix="shadowserver:",
    ragged=True,
)

SHADOWSERVER_COMPROMISED_WEBSITE = CsvProfile(
    name="shadowserver-compromised-website",
    description="Shadowserver compromised website reports: hacked web servers",
    feed="shadowserver:compromised_website",
    required_columns=("timestamp", "ip", "http_host", "url", "category"),
    file_names=("compromised_website", "compromised_website6"),
    time_column="timestamp",
    fields=(
        ColumnMap("ip", "ip", "source", required=True),
        ColumnMap("asn", "asn", "source"),
        ColumnMap("http_host", "domain", "source"),
        ColumnMap("url", "url", "source", host_column="http_host"),
        ColumnMap("cc_url", "url", "c2"),  # where a skimmer injected in the site sends its loot
        ColumnMap("port", "port"),
        ColumnMap("protocol", "protocol"),
        ColumnMap("application", "application"),
        ColumnMap("family", "malware"),
        ColumnMap("category", "description"),
    ),
    rsit_class="intrusions",
    rsit_type="system-compromise",
    extra=(
        *(*_GEO_EXTRA, "tag", "url", "system", "detected_since", "server", "redirect_target"),
        *("detail", "public_source"),
    ),
    report_prefix="shadowserver:",
    ragged=True,
)

SHADOWSERVER_PROFILES = (
    SHADOWSERVER_SINKHOLE,
    SHADOWSERVER_SINKHOLE_DNS,
    SHADOWSERVER_HONEYPOT_BRUTE_FORCE,
    SHADOWSERVER_HONEYPOT_DARKNET,
    SHADOWSERVER_HONEYPOT_HTTP_SCAN,
    SHADOWSERVER_HONEYPOT_DDOS_AMP,
    SHADOWSERVER_SINKHOLE_HTTP_DRONE,
    SHADOWSERVER_DRONE,
    SHADOWSERVER_COMPROMISED_WEBSITE,
    SHADOWSERVER_SCAN,
)

# ---------------------------------------------------------------------------------------------
# Other public feeds

URLHAUS = CsvProfile(
    name="abusech-urlhaus",
    description="abuse.ch URLhaus CSV (id, dateadded, url, url_status, ...): malware URLs",
    feed="abusech:urlhaus",
    file_names=("*urlhaus*.csv", "csv_recent*", "csv_online*"),
    marker="urlhaus",
    comment="#",
    header=False,
    columns=(
        *("id", "dateadded", "url", "url_status", "last_online", "threat", "tags"),
        *("urlhaus_link", "reporter"),
    ),
    time_column="dateadded",
    fields=(ColumnMap("url", "url", "source", required=True),),
    rsit_class="malicious-code",
    rsit_type="malware-distribution",
    extra=("id", "url_status", "last_online", "threat", "tags", "urlhaus_link", "reporter"),
    nature="indicator",
)

URLHAUS_TLD = replace(
    URLHAUS,
    name="abusech-urlhaus-tld",
    description="abuse.ch URLhaus country and TLD CSV feeds: malware URLs with host and AS",
    columns=(
        "dateadded",
        "url",
        "url_status",
        "threat",
        "host",
        "ipaddress",
        "asnumber",
        "country",
    ),
    fields=(
        ColumnMap("url", "url", "source", required=True),
        ColumnMap("host", "domain", "source"),
        ColumnMap("ipaddress", "ip", "source"),
        ColumnMap("asnumber", "asn", "source"),
    ),
    extra=("url_status", "threat", "country"),
)

DATAPLANE = CsvProfile(
    name="dataplane",
    description="dataplane.org reports (ASN | ASname | addr | utc | category)",
    feed="dataplane",
    file_names=("*dataplane*", "sshpwauth*", "sshclient*", "telnetlogin*", "vncrfb*", "sip*"),
    marker="dataplane.org",
    comment="#",
    header=False,
    # Fields are separated by a pipe with at least two spaces on each side (dataplane's
    # format notes), so a pipe inside the AS name does not split it.
    split=r"\s{2,}\|\s{2,}",
    columns=("asn", "asname", "ip", "time", "category"),
    null_values=("NA",),
    time_column="time",
    fields=(
        ColumnMap("ip", "ip", "source", required=True),
        ColumnMap("asn", "asn", "source"),
    ),
    rsit_class="information-gathering",
    rsit_type="scanner",
    classify_column="category",
    # the report's category: logins tried are brute force, the rest probes (the default)
    classify_map=MappingProxyType(
        {
            "sshpwauth": ("intrusion-attempts", "brute-force"),
            "telnetlogin": ("intrusion-attempts", "brute-force"),
            "sipregistration": ("intrusion-attempts", "brute-force"),
            "smtpdata": ("abusive-content", "spam"),
        }
    ),
    extra=("asname", "category"),
)

CERT_EU = CsvProfile(
    name="cert-eu",
    description="CERT-EU threat feed CSV (feed code, source ip, source time, ...)",
    feed="cert-eu",
    required_columns=("feed code", "source ip", "source time", "type"),
    file_names=("*cert_eu*", "*cert-eu*"),
    time_column="source time",
    time_format="iso",
    fields=(
        ColumnMap("source ip", "ip", "source"),
        ColumnMap("url", "url", "source"),
        ColumnMap("domain name", "domain", "source"),
        ColumnMap("source asn", "asn", "source"),
        ColumnMap("destination port", "port"),
        ColumnMap("source port", "src_port"),
        ColumnMap("protocol", "protocol"),
        ColumnMap("tlp", "tlp"),
        ColumnMap("confidence level", "confidence"),
        ColumnMap("description", "description"),
    ),
    classify_column="type",
    classify_map=MappingProxyType(
        {
            "malware url": ("malicious-code", "malware-distribution"),
            "malware": ("malicious-code", "infected-system"),
            "botnet drone": ("malicious-code", "infected-system"),
            "c2 server": ("malicious-code", "c2-server"),
            "c&c": ("malicious-code", "c2-server"),
            "phishing": ("fraud", "phishing"),
            "scanner": ("information-gathering", "scanner"),
            "spam": ("abusive-content", "spam"),
            "ddos": ("availability", "ddos"),
            "brute-force": ("intrusion-attempts", "brute-force"),
            "exploit": ("intrusion-attempts", "exploit"),
            "defacement": ("information-content-security", "unauthorised-information-modification"),
        }
    ),
    extra=(
        *("feed code", "type", "observation time", "first seen", "last seen", "count"),
        *("source cc", "source city", "source as name", "source bgp prefix", "reported asn"),
        *("target", "status", "expiration date"),
    ),
)

# The Spamhaus DROP lists have a reader of their own (readers/spamhaus.py): their time is
# in a comment line, which a profile cannot read.

PROFILES: dict[str, CsvProfile] = {
    p.name: p for p in (*SHADOWSERVER_PROFILES, URLHAUS, URLHAUS_TLD, DATAPLANE, CERT_EU)
}


READER = ProfileChoosingReader(
    "shadowserver",
    "Shadowserver report CSV (scan_*, event4_sinkhole*, event4_honeypot_*, compromised_website, "
    "drone ...)",
    SHADOWSERVER_PROFILES,
)
CSV_READER = ProfileChoosingReader(
    "csv",
    "CSV feeds with a built-in profile (each can also be declared as a format): "
    + ", ".join(PROFILES),
    PROFILES.values(),
)
