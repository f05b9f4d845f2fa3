"""The demo network loaded by `concord init --demo`: made-up but plausible data.

The centre, six national bodies and forty owners with contacts, network and software assets,
and a user of every role with a random password. Every address, AS number and domain comes
from ranges reserved for documentation (RFC 5737, RFC 3849, RFC 5398, RFC 6996, RFC 2606), so
nothing here can point at a real network. All writes go through the services, in the caller's
transaction; the logins are written to `<var>/demo-logins.txt`, readable by its owner only.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from concord.access import service as access
from concord.access.model import Role
from concord.config import get_settings
from concord.db import is_set, utcnow
from concord.errors import Conflict, FaultLocation
from concord.orgs import readers
from concord.orgs import service as orgs
from concord.orgs.model import Organization, OrgKind

CENTRE = "ccc"
LOGINS_FILE = "demo-logins.txt"
IPV4_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")  # RFC 5737
IPV6_RANGE = "2001:db8::/32"  # RFC 3849
OWNER_BLOCK = 28  # 48 blocks of /28 in the three ranges: enough for 40 owners plus extras


class Login(NamedTuple):
    username: str
    password: str
    role: str
    org: str


@dataclass(frozen=True)
class DemoLogins:
    first: tuple[Login, ...]  # what a visitor needs first: (username, password, role, org)
    path: Path  # every login, mode 0600
    users: int = 0


class _State(NamedTuple):
    country: str
    slug: str
    name_en: str
    name_ru: str
    language: str
    phone: str  # country calling code and an area code
    people: tuple[tuple[str, str], ...]  # (Latin, Cyrillic) names of made-up people


class _Owner(NamedTuple):
    slug: str
    sector: str
    language: str
    name_en: str
    name_ru: str
    domains: tuple[str, ...]
    mail_domain: str


STATES = (
    _State(
        "KZ",
        "kz-cert",
        "Kazakhstan National Incident Response Team",
        "Национальная служба реагирования на инциденты Казахстана",
        "ru",
        "+7 7172",
        (
            ("Aigerim Nurlanova", "Айгерим Нурланова"),
            ("Daniyar Seitkali", "Данияр Сейткали"),
            ("Yerlan Abenov", "Ерлан Абенов"),
            ("Madina Zhaksylykova", "Мадина Жаксылыкова"),
            ("Askar Omarov", "Аскар Омаров"),
            ("Gulnara Tulegenova", "Гульнара Тулегенова"),
            ("Timur Bekov", "Тимур Беков"),
        ),
    ),
    _State(
        "UZ",
        "uz-cert",
        "Uzbekistan Computer Emergency Response Centre",
        "Центр реагирования на компьютерные инциденты Узбекистана",
        "ru",
        "+998 71",
        (
            ("Dilshod Karimov", "Дилшод Каримов"),
            ("Nodira Yusupova", "Нодира Юсупова"),
            ("Bekzod Rakhimov", "Бекзод Рахимов"),
            ("Malika Usmonova", "Малика Усмонова"),
            ("Jasur Akhmedov", "Жасур Ахмедов"),
            ("Shahnoza Ergasheva", "Шахноза Эргашева"),
            ("Rustam Nazarov", "Рустам Назаров"),
        ),
    ),
    _State(
        "KG",
        "kg-cert",
        "Kyrgyz Republic Cyber Incident Response Team",
        "Группа реагирования на киберинциденты Кыргызской Республики",
        "ru",
        "+996 312",
        (
            ("Aibek Toktogulov", "Айбек Токтогулов"),
            ("Cholpon Asanova", "Чолпон Асанова"),
            ("Nurlan Sydykov", "Нурлан Сыдыков"),
            ("Aizada Mamytova", "Айзада Мамытова"),
            ("Bakyt Zhumabaev", "Бакыт Жумабаев"),
            ("Elmira Osmonova", "Эльмира Осмонова"),
            ("Ermek Abdrakhmanov", "Эрмек Абдрахманов"),
        ),
    ),
    _State(
        "TJ",
        "tj-cert",
        "Tajikistan Computer Security Incident Response Team",
        "Группа реагирования на инциденты компьютерной безопасности Таджикистана",
        "ru",
        "+992 37",
        (
            ("Farrukh Rahimov", "Фаррух Рахимов"),
            ("Zarina Saidova", "Зарина Саидова"),
            ("Rustam Davlatov", "Рустам Давлатов"),
            ("Manizha Nazarova", "Манижа Назарова"),
            ("Sharif Kurbonov", "Шариф Курбонов"),
            ("Parvina Sharipova", "Парвина Шарипова"),
        ),
    ),
    _State(
        "AM",
        "am-cert",
        "Armenian National Computer Emergency Response Team",
        "Национальная группа реагирования на компьютерные инциденты Армении",
        "en",
        "+374 10",
        (
            ("Armen Petrosyan", "Армен Петросян"),
            ("Lilit Hakobyan", "Лилит Акопян"),
            ("Aram Grigoryan", "Арам Григорян"),
            ("Ani Sargsyan", "Ани Саргсян"),
            ("Davit Harutyunyan", "Давид Арутюнян"),
            ("Nare Avetisyan", "Наре Аветисян"),
            ("Tigran Mkrtchyan", "Тигран Мкртчян"),
        ),
    ),
    _State(
        "AZ",
        "az-cert",
        "Azerbaijan Cyber Security Response Centre",
        "Центр реагирования в области кибербезопасности Азербайджана",
        "en",
        "+994 12",
        (
            ("Elvin Mammadov", "Эльвин Мамедов"),
            ("Leyla Aliyeva", "Лейла Алиева"),
            ("Rashad Huseynov", "Рашад Гусейнов"),
            ("Aynur Guliyeva", "Айнур Гулиева"),
            ("Farid Ismayilov", "Фарид Исмаилов"),
            ("Gunel Hasanova", "Гюнель Гасанова"),
        ),
    ),
)

# Owners by country. Domains use the reserved .example and .test names (RFC 2606); mail
# domains use .example only, since e-mail validation refuses the special-use .test.
OWNERS: dict[str, tuple[_Owner, ...]] = {
    "KZ": (
        _Owner("kz-steppe-bank", "finance", "ru", "Steppe Bank", "Степной банк",
               ("steppe-bank.example", "online.steppe-bank.example"), "steppe-bank.example"),
        _Owner("kz-minfin", "government", "ru", "Ministry of Finance", "Министерство финансов",
               ("minfin-kz.example",), "mail.minfin-kz.example"),
        _Owner("kz-altyn-telecom", "telecom", "ru", "Altyn Telecom", "Алтын Телеком",
               ("altyn-telecom.example", "my.altyn-telecom.test"), "altyn-telecom.example"),
        _Owner("kz-alatau-hospital", "health", "ru", "Alatau Regional Hospital",
               "Алатауская областная больница", ("alatau-hospital.example",),
               "alatau-hospital.example"),
        _Owner("kz-irtysh-grid", "energy", "ru", "Irtysh Power Grid", "Иртышская электросеть",
               ("irtysh-grid.example",), "irtysh-grid.example"),
        _Owner("kz-saryarka-rail", "transport", "en", "Saryarka Rail Freight",
               "Сарыарка Рейл Фрейт", ("saryarka-rail.example",), "saryarka-rail.example"),
        _Owner("kz-digital-gov", "government", "ru", "Agency for Digital Public Services",
               "Агентство цифровых государственных услуг",
               ("egov-kz.example", "api.egov-kz.example"), "egov-kz.example"),
    ),
    "UZ": (
        _Owner("uz-silk-road-bank", "finance", "ru", "Silk Road Bank", "Банк «Шёлковый путь»",
               ("silkroad-bank.example", "ib.silkroad-bank.example"), "silkroad-bank.example"),
        _Owner("uz-minit", "government", "ru", "Ministry of Information Technologies",
               "Министерство информационных технологий", ("minit-uz.example",),
               "mail.minit-uz.example"),
        _Owner("uz-samarkand-mobile", "telecom", "ru", "Samarkand Mobile", "Самарканд Мобайл",
               ("samarkand-mobile.example",), "samarkand-mobile.example"),
        _Owner("uz-tashkent-clinic", "health", "ru", "Tashkent Republican Clinic",
               "Ташкентская республиканская клиника", ("tashkent-clinic.example",),
               "tashkent-clinic.example"),
        _Owner("uz-amu-energy", "energy", "ru", "Amu Darya Thermal Power Plant",
               "Амударьинская ТЭС", ("amu-energy.example",), "amu-energy.example"),
        _Owner("uz-fergana-air", "transport", "en", "Fergana Airways", "Ферганские авиалинии",
               ("fergana-air.example", "booking.fergana-air.test"), "fergana-air.example"),
        _Owner("uz-zarafshan-agrobank", "finance", "ru", "Zarafshan Agrobank",
               "Зарафшан Агробанк", ("zarafshan-agro.example",), "zarafshan-agro.example"),
    ),
    "KG": (
        _Owner("kg-ala-too-bank", "finance", "ru", "Ala-Too Commercial Bank",
               "Коммерческий банк «Ала-Тоо»", ("alatoo-bank.example",), "alatoo-bank.example"),
        _Owner("kg-minhealth", "government", "ru", "Ministry of Health",
               "Министерство здравоохранения", ("minzdrav-kg.example",),
               "mail.minzdrav-kg.example"),
        _Owner("kg-tien-shan-net", "telecom", "ru", "Tien Shan Networks", "Тянь-Шань Нетворкс",
               ("tienshan-net.example",), "tienshan-net.example"),
        _Owner("kg-issyk-kul-hospital", "health", "ru", "Issyk-Kul Regional Hospital",
               "Иссык-Кульская областная больница", ("issykkul-hospital.example",),
               "issykkul-hospital.example"),
        _Owner("kg-naryn-hydro", "energy", "en", "Naryn Hydro Cascade",
               "Нарынский гидрокаскад", ("naryn-hydro.example",), "naryn-hydro.example"),
        _Owner("kg-bishkek-transit", "transport", "ru", "Bishkek City Transit",
               "Бишкекский городской транспорт", ("bishkek-transit.example",),
               "bishkek-transit.example"),
        _Owner("kg-tax-service", "government", "ru", "State Tax Service",
               "Государственная налоговая служба", ("tax-kg.example", "cabinet.tax-kg.test"),
               "tax-kg.example"),
    ),
    "TJ": (
        _Owner("tj-pamir-bank", "finance", "ru", "Pamir Savings Bank",
               "Памирский сберегательный банк", ("pamir-bank.example",), "pamir-bank.example"),
        _Owner("tj-mineconomy", "government", "ru", "Ministry of Economy",
               "Министерство экономики", ("mineconomy-tj.example",),
               "mail.mineconomy-tj.example"),
        _Owner("tj-varzob-telecom", "telecom", "ru", "Varzob Telecom", "Варзоб Телеком",
               ("varzob-telecom.example",), "varzob-telecom.example"),
        _Owner("tj-dushanbe-medical", "health", "ru", "Dushanbe Medical Centre",
               "Душанбинский медицинский центр", ("dushanbe-medical.example",),
               "dushanbe-medical.example"),
        _Owner("tj-vakhsh-energy", "energy", "ru", "Vakhsh Energy Distribution",
               "Вахшская распределительная компания", ("vakhsh-energy.example",),
               "vakhsh-energy.example"),
        _Owner("tj-khujand-airport", "transport", "en", "Khujand Airport Services",
               "Службы аэропорта Худжанд", ("khujand-airport.example",),
               "khujand-airport.example"),
    ),
    "AM": (
        _Owner("am-ararat-bank", "finance", "en", "Ararat Valley Bank",
               "Банк Араратской долины", ("ararat-bank.example", "online.ararat-bank.example"),
               "ararat-bank.example"),
        _Owner("am-minjustice", "government", "en", "Ministry of Justice",
               "Министерство юстиции", ("minjustice-am.example",), "mail.minjustice-am.example"),
        _Owner("am-sevan-telecom", "telecom", "en", "Sevan Telecom", "Севан Телеком",
               ("sevan-telecom.example",), "sevan-telecom.example"),
        _Owner("am-yerevan-cardio", "health", "ru", "Yerevan Cardiology Institute",
               "Ереванский институт кардиологии", ("yerevan-cardio.example",),
               "yerevan-cardio.example"),
        _Owner("am-debed-power", "energy", "en", "Debed Power Networks", "Дебедские электросети",
               ("debed-power.example",), "debed-power.example"),
        _Owner("am-gyumri-rail", "transport", "en", "Gyumri Rail Logistics",
               "Гюмри Рейл Логистикс", ("gyumri-rail.example",), "gyumri-rail.example"),
        _Owner("am-mineducation", "government", "ru", "Ministry of Education",
               "Министерство образования", ("mineducation-am.example",),
               "mineducation-am.example"),
    ),
    "AZ": (
        _Owner("az-caspian-bank", "finance", "en", "Caspian Trade Bank",
               "Каспийский торговый банк", ("caspian-bank.example", "ib.caspian-bank.test"),
               "caspian-bank.example"),
        _Owner("az-minecology", "government", "en", "Ministry of Ecology",
               "Министерство экологии", ("minecology-az.example",), "mail.minecology-az.example"),
        _Owner("az-absheron-mobile", "telecom", "en", "Absheron Mobile", "Абшерон Мобайл",
               ("absheron-mobile.example",), "absheron-mobile.example"),
        _Owner("az-ganja-hospital", "health", "ru", "Ganja Central Hospital",
               "Гянджинская центральная больница", ("ganja-hospital.example",),
               "ganja-hospital.example"),
        _Owner("az-kura-oil-gas", "energy", "en", "Kura Oil and Gas",
               "Куринская нефтегазовая компания", ("kura-oilgas.example",),
               "kura-oilgas.example"),
        _Owner("az-baku-harbour", "transport", "en", "Baku Harbour Logistics",
               "Бакинская портовая логистика", ("baku-harbour.example",),
               "baku-harbour.example"),
    ),
}  # fmt: skip

# Software by sector, with versions chosen to have well-known advisories (Log4Shell, Spring4Shell,
# the Apache 2.4.49 path traversal, FortiOS SSL-VPN...), so that matching has something to find.
SOFTWARE: dict[str, tuple[str, ...]] = {
    "finance": (
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        "pkg:maven/org.springframework/spring-webmvc@5.3.17",
        "cpe:2.3:o:fortinet:fortios:7.0.1:*:*:*:*:*:*:*",
        "pkg:npm/lodash@4.17.20",
        "cpe:2.3:a:oracle:weblogic_server:12.2.1.3.0:*:*:*:*:*:*:*",
        "pkg:pypi/django@4.2.1",
    ),
    "government": (
        "cpe:2.3:a:microsoft:exchange_server:2019:cumulative_update_11:*:*:*:*:*:*",
        "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*",
        "cpe:2.3:a:zimbra:collaboration:8.8.15:*:*:*:*:*:*:*",
        "pkg:pypi/django@4.2.1",
        "cpe:2.3:a:roundcube:webmail:1.6.0:*:*:*:*:*:*:*",
        "pkg:npm/jquery@3.4.1",
    ),
    "telecom": (
        "cpe:2.3:o:cisco:ios_xe:17.6.1:*:*:*:*:*:*:*",
        "cpe:2.3:o:juniper:junos:21.4:r1:*:*:*:*:*:*",
        "cpe:2.3:o:mikrotik:routeros:6.49.6:*:*:*:*:*:*:*",
        "cpe:2.3:a:f5:big-ip_local_traffic_manager:16.1.2:*:*:*:*:*:*:*",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        "cpe:2.3:o:fortinet:fortios:7.0.1:*:*:*:*:*:*:*",
    ),
    "health": (
        "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*",
        "pkg:npm/lodash@4.17.20",
        "cpe:2.3:a:vmware:vcenter_server:7.0:update2:*:*:*:*:*:*",
        "pkg:pypi/pillow@9.5.0",
        "pkg:npm/axios@0.21.1",
        "cpe:2.3:a:php:php:7.4.21:*:*:*:*:*:*:*",
    ),
    "energy": (
        "cpe:2.3:a:schneider-electric:ecostruxure_control_expert:15.1:*:*:*:*:*:*:*",
        "cpe:2.3:o:paloaltonetworks:pan-os:10.2.3:*:*:*:*:*:*:*",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        "cpe:2.3:a:ivanti:connect_secure:22.3:r1:*:*:*:*:*:*",
        "pkg:pypi/requests@2.25.1",
    ),
    "transport": (
        "pkg:maven/org.apache.struts/struts2-core@2.5.30",
        "pkg:npm/express@4.17.1",
        "cpe:2.3:a:atlassian:confluence_server:7.13.6:*:*:*:*:*:*:*",
        "pkg:npm/lodash@4.17.20",
        "cpe:2.3:o:fortinet:fortios:7.0.1:*:*:*:*:*:*:*",
        "pkg:golang/github.com/gin-gonic/gin@v1.8.1",
    ),
}
SOFTWARE_PER_OWNER = 3

STAFF_ROLES = (Role.ADMIN, Role.ANALYST, Role.READER)
TEAM_DESK = {"en": "Security operations desk", "ru": "Дежурная смена ИБ"}


def _password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


class _Allocator:
    """Hands out non-overlapping prefixes, AS numbers and a rotating pick of software."""

    def __init__(self) -> None:
        self._blocks = (
            block
            for text in IPV4_RANGES
            for block in ipaddress.IPv4Network(text).subnets(new_prefix=OWNER_BLOCK)
        )
        self._next_public_asn = 64496  # RFC 5398 documentation AS numbers, for the operators
        self._per_sector: dict[str, int] = {}

    def ipv4(self, count: int) -> list[ipaddress.IPv4Network]:
        return [next(self._blocks) for _ in range(count)]

    def asn(self, telecom: bool, state_no: int, owner_no: int) -> int:
        if telecom:
            self._next_public_asn += 1
            return self._next_public_asn - 1
        return 4_200_000_000 + state_no * 100 + owner_no  # RFC 6996 private use

    def software(self, sector: str) -> tuple[str, ...]:
        pool = SOFTWARE[sector]
        start = self._per_sector.get(sector, 0)
        self._per_sector[sector] = start + 1
        return tuple(pool[(start + k) % len(pool)] for k in range(SOFTWARE_PER_OWNER))


def _owner_assets(
    owner: _Owner,
    prefixes: list[ipaddress.IPv4Network],
    ipv6: str,
    asn: int,
    software: tuple[str, ...],
) -> list[readers.AssetRow]:
    items: list[tuple[str, str, str]] = [
        ("ipv4-prefix", str(net), "second site" if i else "head office and data centre")
        for i, net in enumerate(prefixes)
    ]
    items.append(("ipv6-prefix", ipv6, "head office and data centre"))
    items.append(("asn", f"AS{asn}", "own autonomous system"))
    items += [("domain", name, "public web site") for name in owner.domains]
    items.append(("email-domain", owner.mail_domain, "staff mail"))
    items += [("software", name, "") for name in software]
    location = FaultLocation(source=f"demo:{owner.slug}")
    return [readers.normalise(k, v, "", d, location) for k, v, d in items]


def _mailbox(latin_name: str) -> str:
    first, last = latin_name.lower().split(" ", 1)
    return f"{first[0]}.{last.replace(' ', '')}"


def _add_user(session: Session, login: Login, full_name: str, email: str, language: str) -> Login:
    access.create_user(
        session,
        None,
        access.UserInput(
            login.username,
            login.org,
            login.role,
            login.password,
            full_name=full_name,
            email=email,
            language=language,
        ),
    )
    return login


def _add_staff(session: Session, org_slug: str, domain: str, language: str) -> list[Login]:
    return [
        _add_user(
            session,
            Login(f"{org_slug}-{role.value}", _password(), role.value, org_slug),
            f"{org_slug.upper()} {role.value}",
            f"{role.value}@{domain}",
            language,
        )
        for role in STAFF_ROLES
    ]


def _add_centre(session: Session) -> list[Login]:
    orgs.create_org(
        session,
        None,
        orgs.OrgInput(
            CENTRE,
            OrgKind.CENTRE.value,
            "Coordination Centre for Incident Response",
            "Координационный центр по реагированию на компьютерные инциденты",
            language="en",
        ),
    )
    orgs.add_contact(
        session,
        None,
        CENTRE,
        orgs.ContactInput("Centre duty officer", "duty@ccc.example", "+7 495 555 0100", "duty"),
    )
    return _add_staff(session, CENTRE, "ccc.example", "en")


def _add_national_body(session: Session, state: _State) -> list[Login]:
    domain = f"{state.slug}.example"
    orgs.create_org(
        session,
        None,
        orgs.OrgInput(
            state.slug,
            OrgKind.NATIONAL_BODY.value,
            state.name_en,
            state.name_ru,
            state.country,
            sector="government",
            language=state.language,
            parent=CENTRE,
        ),
    )
    duty = "Дежурный аналитик" if state.language == "ru" else "Duty analyst"
    phone = f"{state.phone} 555 0100"
    orgs.add_contact(
        session,
        None,
        state.slug,
        orgs.ContactInput(duty, f"duty@{domain}", phone, "duty", state.language),
    )
    return _add_staff(session, state.slug, domain, state.language)


def _add_owner(
    session: Session,
    state: _State,
    state_no: int,
    owner: _Owner,
    owner_no: int,
    alloc: _Allocator,
) -> Login:
    lang = owner.language
    orgs.create_org(
        session,
        None,
        orgs.OrgInput(
            owner.slug,
            OrgKind.OWNER.value,
            owner.name_en,
            owner.name_ru,
            sector=owner.sector,
            language=lang,
            parent=state.slug,
        ),
    )
    latin, cyrillic = state.people[(owner_no - 1) % len(state.people)]
    person = cyrillic if lang == "ru" else latin
    email = f"{_mailbox(latin)}@{owner.mail_domain}"
    phone = f"{state.phone} 555 {state_no}{owner_no:03d}"
    orgs.add_contact(
        session, None, owner.slug, orgs.ContactInput(person, email, phone, "security", lang)
    )
    if owner_no % 2:  # every other owner also has a team mailbox
        desk_phone = f"{state.phone} 555 {state_no}{owner_no + 500:03d}"
        desk = orgs.ContactInput(
            TEAM_DESK[lang], f"soc@{owner.mail_domain}", desk_phone, "soc", lang
        )
        orgs.add_contact(session, None, owner.slug, desk)

    telecom = owner.sector == "telecom"  # operators announce a second prefix
    rows = _owner_assets(
        owner,
        alloc.ipv4(2 if telecom else 1),
        f"2001:db8:{state_no:x}{owner_no:03x}::/48",
        alloc.asn(telecom, state_no, owner_no),
        alloc.software(owner.sector),
    )
    orgs.import_assets(session, None, owner.slug, rows)

    login = Login(f"{owner.slug}-contact", _password(), Role.OWNER_CONTACT.value, owner.slug)
    return _add_user(session, login, person, email, lang)


def load_demo(session: Session) -> DemoLogins:
    """Create the demo network in the caller's transaction and write its logins file.

    Refuses with Conflict when the network has a centre already (the demo's, or a real
    network's), so a second run changes nothing and a real network is never mixed with
    made-up members. The file is written last, after every row is flushed; the caller
    commits."""
    from concord.site import is_demo, set_flag

    if is_demo(session):
        raise Conflict("the demo network is loaded already")
    centre = session.scalar(select(Organization.slug).where(Organization.kind == OrgKind.CENTRE))
    if centre is not None:
        raise Conflict(
            f"the network has its centre already: {centre}; the demo is loaded into a new "
            "database (another CONCORD_HOME or CONCORD_DATABASE_URL)"
        )

    set_flag(session, "demo", "true")  # every page says so
    logins = _add_centre(session)
    alloc = _Allocator()
    for state_no, state in enumerate(STATES, 1):
        logins += _add_national_body(session, state)
        for owner_no, owner in enumerate(OWNERS[state.country], 1):
            logins.append(_add_owner(session, state, state_no, owner, owner_no, alloc))

    path = get_settings().var / LOGINS_FILE
    _write_logins(path, logins)
    by_name = {login.username: login for login in logins}
    first_owner = OWNERS[STATES[0].country][0].slug
    wanted = (
        f"{CENTRE}-admin",
        f"{CENTRE}-analyst",
        f"{STATES[0].slug}-analyst",
        f"{first_owner}-contact",
    )
    return DemoLogins(tuple(by_name[name] for name in wanted), path, len(logins))


def _write_logins(path: Path, logins: list[Login]) -> None:
    """Write the table through a temporary file created 0600, then rename it into place, so
    the passwords are never readable by others and never half-written."""
    header = Login("USERNAME", "PASSWORD", "ROLE", "ORGANISATION")
    rows = [header, *logins]
    user_w, org_w, role_w = (
        max(len(getattr(r, f)) for r in rows) for f in ("username", "org", "role")
    )

    def line(r: Login) -> str:
        return f"{r.username:<{user_w}}  {r.org:<{org_w}}  {r.role:<{role_w}}  {r.password}"

    stamp = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            f"# Concord demo network: every login, created {stamp}.",
            "# Made-up organisations and random passwords; keep this file private.",
            "",
            *(line(r) for r in rows),
            "",
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(fd, 0o600)  # exactly 0600 whatever the umask
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- made-up reports, so that every page has something to show ------------------------------

# Attackers come from the benchmarking range (RFC 2544), which no owner of the demo holds.
# Being reserved, such addresses are on a warning list and never correlate; what the states
# share is malware: made-up samples, each seen by the sensors of several states.
_ATTACKERS = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(24)]
_SAMPLES = [hashlib.sha256(f"concord demo sample {i}".encode()).hexdigest() for i in range(4)]
_SCAN_HEADER = '"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"\n'
_SCAN_PORTS = ((3389, "rdp"), (22, "ssh"), (445, "smb"))


@dataclass(frozen=True)
class DemoReports:
    submissions: int
    events: int
    cross_state: int
    cases: int = 0
    reports: int = 0


def load_demo_reports(factory: sessionmaker[Session], now: datetime | None = None) -> DemoReports:
    """Made-up reports of the fortnight before `now`, sent in by each national body's
    analyst: a Shadowserver-style scan of its owners' exposed hosts (TLP:AMBER, shared with
    the owners) and the brute-force sources its sensors saw (TLP:GREEN); a few attackers are
    seen in several states, so correlation finds cross-state indicators and a campaign. The
    centre opens a case about the widest one, and the reports of the last seven days are
    built for the network and each state."""
    from concord.events import correlation
    from concord.intake import service as intake
    from concord.reports import period as periods
    from concord.reports import service as report_service

    moment = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
    submissions = events = 0
    for state_no, state in enumerate(STATES):
        with factory() as session:
            analyst = access.get_user(session, None, f"{state.slug}-analyst")
            principal = access.principal_for(analyst, session.get(Organization, analyst.org_id))
            scans = _demo_scans(session, state, moment)
        # one file per scanned service, as Shadowserver sends them
        sends = [
            (f"{moment:%Y-%m-%d}-scan_{tag}-{state.slug}.csv", scan, "amber", True)
            for tag, scan in scans.items()
        ]
        sends.append(
            (f"sensors-{state.slug}.jsonl", _demo_attacks(state_no, moment), "green", False)
        )
        for name, data, tlp, share in sends:
            receipt = intake.ingest(
                factory,
                principal,
                intake.Source(io.BytesIO(data), name),
                tlp=tlp,
                channel="demo",
                share_owners=share,
            )
            submissions += 1
            events += receipt.accepted
    with factory() as session:
        found = correlation.correlate(session)
        session.commit()
    with factory() as session:
        cases = _demo_case(session)
        session.commit()
    with factory() as session:
        # the last seven days against the seven before: both hold demo reports
        last = periods.custom(moment.date() - timedelta(days=6), moment.date())
        built = len(report_service.build_scheduled(session, last))
        session.commit()
    return DemoReports(submissions, events, found.cross_state, cases, built)


def _demo_case(session: Session) -> int:
    """The centre's coordination case about the sample seen in the most states (one the
    first state saw, whose analyst's login `make run` prints, on a tie), with the national
    bodies of those states taking part; 1 if opened, else 0."""
    from concord.cases import service as cases
    from concord.events.model import EventObservable, Indicator, Sighting

    seen: dict[str, set[str]] = {}
    for value, country in session.execute(
        select(Indicator.value, Sighting.country)
        .join(Sighting, Sighting.indicator_id == Indicator.id)
        .where(Indicator.value.in_(_SAMPLES), is_set(Indicator.cross_state))
    ):
        seen.setdefault(value, set()).add(country)
    if not seen:
        return 0
    first = STATES[0].country
    value = max(sorted(seen), key=lambda v: (len(seen[v]), first in seen[v]))
    bodies = session.scalars(
        select(Organization.slug).where(
            Organization.kind == OrgKind.NATIONAL_BODY, Organization.country.in_(seen[value])
        )
    )
    reports = session.scalars(
        select(EventObservable.event_id)
        .join(Indicator, Indicator.id == EventObservable.indicator_id)
        .where(Indicator.value == value)
        .order_by(EventObservable.event_id)
    )
    analyst = access.get_user(session, None, f"{CENTRE}-analyst")
    principal = access.principal_for(analyst, session.get(Organization, analyst.org_id))
    case = cases.create_case(
        session,
        principal,
        cases.CaseInput(
            title=f"Made-up malware sample seen by the sensors of {len(seen[value])} states",
            summary=(
                "The same sample is distributed from hosts seen in several member states. "
                "Each national body checks which of its owners fetched it."
            ),
            severity="high",
            tlp="green",
            indicators=[value],
            event_ids=list(reports),
            participants=list(bodies),
            techniques=["T1105"],
        ),
    )
    cases.add_comment(
        session,
        principal,
        case.id,
        "Opened from the cross-state correlation alert. Please report what your sensors saw.",
    )
    return 1


def _demo_scans(session: Session, state: _State, moment: datetime) -> dict[str, bytes]:
    """Exposed hosts in the first IPv4 prefix of each of the state's owners: a scan report
    per service (rdp, ssh, smb) that found any."""
    from concord.orgs.model import Asset

    prefixes = session.execute(
        select(Organization.slug, Asset.value)
        .join(Asset, Asset.org_id == Organization.id)
        .where(
            Organization.parent_id
            == select(Organization.id).where(Organization.slug == state.slug).scalar_subquery(),
            Asset.kind == "ipv4-prefix",
        )
        .order_by(Organization.slug, Asset.id)
    ).all()
    lines: dict[str, list[str]] = {}
    seen: set[str] = set()
    for number, (slug, prefix) in enumerate(prefixes):
        if slug in seen:
            continue
        seen.add(slug)
        hosts = list(ipaddress.ip_network(prefix).hosts())
        for k in range(1 + number % 3):
            port, tag = _SCAN_PORTS[(number + k) % len(_SCAN_PORTS)]
            when = moment - timedelta(hours=37 * (number + k) % 330)  # over the fortnight
            host = hosts[(k * 7 + 3) % len(hosts)]
            lines.setdefault(tag, [_SCAN_HEADER]).append(
                f'"{when:%Y-%m-%d %H:%M:%S}","{host}","tcp",{port},"host{k}.{slug}.example",'
                f'"{tag}",,"{state.country}",,\n'
            )
    return {tag: "".join(rows).encode() for tag, rows in sorted(lines.items())}


def _demo_attacks(state_no: int, moment: datetime) -> bytes:
    """What the state's sensors saw: brute-force sources of its own, and downloads of the
    shared samples from addresses of its own."""
    records = []
    for k, address in enumerate(_ATTACKERS[state_no * 3 : state_no * 3 + 3]):
        records.append(
            {
                "time.source": (
                    moment - timedelta(hours=(29 * k + 41 * state_no) % 330)
                ).isoformat(),
                "source.ip": address,
                "classification.taxonomy": "intrusion-attempts",
                "classification.type": "brute-force",
                "protocol.application": "ssh",
                "destination.port": 22,
                "feed.name": "national sensors",
            }
        )
    for k, sample in enumerate(_SAMPLES):
        if (k + state_no) % 3 == 0:  # each sample reaches most states, not all
            continue
        records.append(
            {
                "time.source": (
                    moment - timedelta(hours=(23 * k + 53 * state_no) % 330)
                ).isoformat(),
                "source.ip": _ATTACKERS[18 + (k + state_no) % 6],
                "classification.taxonomy": "malicious-code",
                "classification.type": "malware-distribution",
                "malware.name": f"demo-loader-{k}",
                "malware.hash.sha256": sample,
                "feed.name": "national sensors",
            }
        )
    return "".join(json.dumps(r) + "\n" for r in records).encode()
