"""Derive the compact ATT&CK technique -> mitigation table shipped with Concord.

Reads MITRE's STIX bundle of Enterprise ATT&CK attack-patterns, course-of-action objects and
`mitigates` relationships (and the LICENSE.txt beside it) and writes, next to this script:

    techniques.json  {"version", "notice", "tactics", "techniques", "mitigations", "mitigates"}
    LICENSE.txt      MITRE's licence, copied unchanged (the licence asks for it in every copy)
    NOTICE.txt       MITRE's copyright designation, taken word for word from the licence

Standard library only, so it runs anywhere:

    python src/concord/reports/attack/build.py path/to/enterprise-attack-v18.1-mitigations.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _attack_id(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("external_references", ()):
        if ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
            return str(ref["external_id"])
    return None


def _live(obj: dict[str, Any]) -> bool:
    return not obj.get("revoked") and not obj.get("x_mitre_deprecated")


def derive(bundle: dict[str, Any], version: str, notice: str) -> dict[str, Any]:
    objects = [o for o in bundle.get("objects", ()) if _live(o)]
    tactics = {
        o["x_mitre_shortname"]: {"id": _attack_id(o), "name": o["name"]}
        for o in objects
        if o["type"] == "x-mitre-tactic"
    }
    ids: dict[str, str] = {}
    techniques: dict[str, dict[str, Any]] = {}
    mitigations: dict[str, str] = {}
    for o in objects:
        attack_id = _attack_id(o)
        if attack_id is None:
            continue
        if o["type"] == "attack-pattern":
            ids[o["id"]] = attack_id
            phases = [
                p["phase_name"]
                for p in o.get("kill_chain_phases", ())
                if p.get("kill_chain_name") == "mitre-attack"
            ]
            techniques[attack_id] = {"name": o["name"], "tactics": phases}
        elif o["type"] == "course-of-action":
            ids[o["id"]] = attack_id
            mitigations[attack_id] = o["name"]
    mitigates: dict[str, set[str]] = {}
    for o in objects:
        if o["type"] != "relationship" or o.get("relationship_type") != "mitigates":
            continue
        source, target = ids.get(o["source_ref"]), ids.get(o["target_ref"])
        # Skip links to objects left out above (revoked, deprecated, or of another domain).
        if source in mitigations and target in techniques:
            mitigates.setdefault(target, set()).add(source)
    return {
        "version": version,
        "notice": notice,
        "tactics": dict(sorted(tactics.items())),
        "techniques": dict(sorted(techniques.items())),
        "mitigations": dict(sorted(mitigations.items())),
        "mitigates": {t: sorted(ms) for t, ms in sorted(mitigates.items())},
    }


def copyright_designation(licence: str) -> str:
    """The quoted copyright line of the ATT&CK section of MITRE's LICENSE.txt."""
    section = licence.split("CAPEC")[0]
    match = re.search(r'"(©[^"]+)"', section)
    if match is None:
        raise SystemExit("no quoted copyright designation found in the ATT&CK licence")
    return match.group(1).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the STIX bundle from MITRE")
    parser.add_argument("--licence", type=Path, help="LICENSE.txt (default: beside the bundle)")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    args = parser.parse_args(argv)

    licence_path = args.licence or args.bundle.with_name("LICENSE.txt")
    licence = licence_path.read_text(encoding="utf-8")
    found = re.search(r"attack-v(\d+(?:\.\d+)*)", args.bundle.name)
    version = found.group(1) if found else "unknown"
    notice = copyright_designation(licence)
    bundle = json.loads(args.bundle.read_text(encoding="utf-8"))
    data = derive(bundle, version, notice)

    args.out.mkdir(parents=True, exist_ok=True)
    # One line per top-level table keeps the file small and still diffable.
    lines = [
        f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
        for k, v in data.items()
    ]
    (args.out / "techniques.json").write_text("{\n" + ",\n".join(lines) + "\n}\n", "utf-8")
    if licence_path.resolve() != (args.out / "LICENSE.txt").resolve():
        shutil.copyfile(licence_path, args.out / "LICENSE.txt")
    (args.out / "NOTICE.txt").write_text(
        f"MITRE ATT&CK® Enterprise v{version}: technique names, tactics, mitigations and the\n"
        "technique-to-mitigation mapping in techniques.json are derived from MITRE's STIX data\n"
        "(https://github.com/mitre/cti) under the licence in LICENSE.txt.\n\n"
        f"{notice}\n",
        "utf-8",
    )
    print(
        f"{len(data['techniques'])} techniques, {len(data['mitigations'])} mitigations, "
        f"{sum(len(v) for v in data['mitigates'].values())} links -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
