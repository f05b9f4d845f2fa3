"""The Reference Security Incident Taxonomy (RSIT): classes and their types.

Values are the machine-readable names used by the taxonomy (and by IntelMQ's
classification.taxonomy / classification.type), so events exchange cleanly.
"""

from __future__ import annotations

RSIT: dict[str, tuple[str, ...]] = {
    "abusive-content": ("spam", "harmful-speech", "violence"),
    "malicious-code": (
        "infected-system",
        "c2-server",
        "malware-distribution",
        "malware-configuration",
    ),
    "information-gathering": ("scanner", "sniffing", "social-engineering"),
    "intrusion-attempts": ("ids-alert", "brute-force", "exploit"),
    "intrusions": (
        "privileged-account-compromise",
        "unprivileged-account-compromise",
        "application-compromise",
        "system-compromise",
        "burglary",
    ),
    "availability": ("dos", "ddos", "misconfiguration", "sabotage", "outage"),
    "information-content-security": (
        "unauthorised-information-access",
        "unauthorised-information-modification",
        "data-loss",
        "data-leak",
    ),
    "fraud": ("unauthorised-use-of-resources", "copyright", "masquerade", "phishing"),
    "vulnerable": (
        "weak-crypto",
        "ddos-amplifier",
        "potentially-unwanted-accessible",
        "information-disclosure",
        "vulnerable-system",
    ),
    "other": ("other", "undetermined"),
    "test": ("test",),
}

TYPE_TO_CLASS: dict[str, str] = {t: c for c, types in RSIT.items() for t in types}


def classify(rsit_type: str, rsit_class: str | None = None) -> tuple[str, str]:
    """Return a valid (class, type); unknown values fall back to other/undetermined."""
    rsit_type = (rsit_type or "").strip().lower()
    if rsit_type in TYPE_TO_CLASS:
        return TYPE_TO_CLASS[rsit_type], rsit_type
    cls = (rsit_class or "").strip().lower()
    if cls in RSIT and len(RSIT[cls]) == 1:
        return cls, RSIT[cls][0]
    # A class without a type has no valid RSIT pair of its own.
    return "other", "undetermined"


# Readable names of the classes, for pages and reports (the machine names stay in data).
CLASS_LABELS = {
    "abusive-content": "Abusive content",
    "malicious-code": "Malicious code",
    "information-gathering": "Information gathering",
    "intrusion-attempts": "Intrusion attempts",
    "intrusions": "Intrusions",
    "availability": "Availability",
    "information-content-security": "Information content security",
    "fraud": "Fraud",
    "vulnerable": "Vulnerable",
    "other": "Other",
    "test": "Test",
}

# Readable names of the types, for pages (the machine names stay in data and in titles).
TYPE_LABELS = {
    "spam": "Spam",
    "harmful-speech": "Harmful speech",
    "violence": "Violence",
    "infected-system": "Infected system",
    "c2-server": "C2 server",
    "malware-distribution": "Malware distribution",
    "malware-configuration": "Malware configuration",
    "scanner": "Scanning",
    "sniffing": "Sniffing",
    "social-engineering": "Social engineering",
    "ids-alert": "IDS alert",
    "brute-force": "Brute force",
    "exploit": "Exploit",
    "privileged-account-compromise": "Privileged account compromise",
    "unprivileged-account-compromise": "Unprivileged account compromise",
    "application-compromise": "Application compromise",
    "system-compromise": "System compromise",
    "burglary": "Burglary",
    "dos": "DoS",
    "ddos": "DDoS",
    "misconfiguration": "Misconfiguration",
    "sabotage": "Sabotage",
    "outage": "Outage",
    "unauthorised-information-access": "Unauthorised access to information",
    "unauthorised-information-modification": "Unauthorised modification of information",
    "data-loss": "Data loss",
    "data-leak": "Data leak",
    "unauthorised-use-of-resources": "Unauthorised use of resources",
    "copyright": "Copyright infringement",
    "masquerade": "Masquerade",
    "phishing": "Phishing",
    "weak-crypto": "Weak cryptography",
    "ddos-amplifier": "DDoS amplifier",
    "potentially-unwanted-accessible": "Potentially unwanted accessible service",
    "information-disclosure": "Information disclosure",
    "vulnerable-system": "Vulnerable system",
    "other": "Other",
    "undetermined": "Undetermined",
    "test": "Test",
}
