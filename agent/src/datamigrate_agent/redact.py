"""Keep a secret out of a message meant for logs, status and termination messages.

Masking every occurrence of a password's text mangles the message when the password is short
("a" turns "server is unavailable" into "server is un***v***il***ble"). Instead:
the value of every ``password=`` / ``pwd=`` fragment and of a URL's user information goes,
whatever it is; the secret itself goes wherever it stands as a whole token (not inside a
longer word), in plain and in URL-encoded form; and a secret long enough not to occur by
chance (``ANYWHERE_FROM`` characters) goes wherever it occurs, inside words too.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

__all__ = ["ANYWHERE_FROM", "MASK", "mask_secret"]

MASK = "***"
#: From this length a secret is masked inside words too.
ANYWHERE_FROM = 8

#: ``password=...`` in a connection string or a libpq DSN, quoted (backslash or doubled quote
#: escapes, ODBC braces) or not.
_KEY_VALUE = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|\{[^}]*\}|[^\s;,&)]+)",
    re.IGNORECASE,
)
#: ``scheme://user:secret@host``.
_URL_USERINFO = re.compile(r"(?P<head>[a-z][\w+.-]*://[^\s:/@]*:)(?P<value>[^\s/@]+)(?=@)", re.I)


def mask_secret(text: str, secret: str | None) -> str:
    """``text`` without ``secret``, its ``password=`` values and URL passwords."""
    # The secret first: its own text bounds it better than a guess at where a value ends.
    if secret:
        forms = {secret, quote(secret, safe=""), quote_plus(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = _mask_form(text, form)
    text = _KEY_VALUE.sub(_masked_value, text)
    return _URL_USERINFO.sub(lambda m: m.group("head") + MASK, text)


def _masked_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quoted = value[0] in "'\"{"
    return match.group("key") + (value[0] + MASK + value[-1] if quoted else MASK)


def _mask_form(text: str, form: str) -> str:
    if len(form) >= ANYWHERE_FROM:
        return text.replace(form, MASK)
    # A whole token: no letter, digit or underscore glued to a side that is one itself (a
    # secret that starts or ends with punctuation has no word to be inside on that side).
    before = r"(?<!\w)" if re.match(r"\w", form[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", form[-1]) else ""
    return re.sub(before + re.escape(form) + after, MASK, text)
