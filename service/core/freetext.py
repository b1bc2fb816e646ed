"""The one rule for free text a person types (names, visit labels, locations, reasons,
notes): what may be stored, whatever the way in (API, dashboard, capture page, CLI).

Free text reaches the exports (CSV, SDTM tables, ``.xpt``), the dashboard, admins'
terminals and the audit log, so it may not

- start a spreadsheet formula (``= + - @``, tab, CR): SDTM tables carry values as
  they are, so ``=HYPERLINK(...)`` would run in the spreadsheet that opens them;
- hold a control character (ESC clears a terminal, CR forges a line), a format
  character (bidi overrides and isolates reverse what is shown, zero-width ones
  hide text), a line or paragraph separator, or an unassigned, surrogate or
  private-use code point;
- hold an invisible look-alike (Hangul fillers, the blank Braille pattern, the
  combining grapheme joiner, variation selectors): a name made of them looks empty
  or like another person's.

Multi-line fields (reasons, notes) may hold line feeds; a browser's CRLF counts as one.
Pure: ``check_text`` raises ``UnsafeText`` (a ``DomainError``, code ``unsafe_text``);
the wire schemas, the form parsers and the ORM's column validators all call it.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from service.core.errors import DomainError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet runs as a formula at the start of a cell."""
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Cs", "Co"})
"""Controls, format characters (bidi, zero-width), separators, unassigned, surrogates,
private use."""
INVISIBLE_LOOKALIKES = frozenset(
    {
        0x034F,  # COMBINING GRAPHEME JOINER
        0x115F,  # HANGUL CHOSEONG FILLER
        0x1160,  # HANGUL JUNGSEONG FILLER
        0x17B4,  # KHMER VOWEL INHERENT AQ
        0x17B5,  # KHMER VOWEL INHERENT AA
        0x2800,  # BRAILLE PATTERN BLANK
        0x3164,  # HANGUL FILLER
        0xFFA0,  # HALFWIDTH HANGUL FILLER
        *range(0x180B, 0x1810),  # MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
        *range(0xFE00, 0xFE10),  # VARIATION SELECTORS
        *range(0xE0100, 0xE01F0),  # VARIATION SELECTORS SUPPLEMENT
    }
)
"""Letters and marks that draw nothing: refused although their category is printable."""


class UnsafeText(DomainError):
    code = "unsafe_text"


def refused_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` that free text may not hold, or None."""
    for ch in text:
        if multiline and ch == "\n":
            continue
        if unicodedata.category(ch) in REFUSED_CATEGORIES or ord(ch) in INVISIBLE_LOOKALIKES:
            return ch
    return None


def describe(ch: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: a character named for an error message."""
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'a control character')})"


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    """``value`` as it may be stored (a browser's CRLF made LF when ``multiline``), or
    ``UnsafeText`` naming ``field`` and what to change."""
    if multiline:
        value = value.replace("\r\n", "\n")
    ch = refused_character(value, multiline=multiline)
    if ch is not None:
        raise UnsafeText(
            f"{field} contains the character {describe(ch)}: use printable text only"
            " (no control, bidi or invisible characters)"
        )
    if value.startswith(FORMULA_START):
        raise UnsafeText(
            f"{field} may not start with = + - @ or a tab (a spreadsheet would run it as a"
            f" formula): {value[:20]!r}; start it with a letter or a digit"
        )
    return value


def check_optional(value: str | None, field: str, *, multiline: bool = False) -> str | None:
    """``check_text`` for a field that may be absent."""
    return None if value is None else check_text(value, field, multiline=multiline)


def _pydantic_check(multiline: bool) -> Any:
    """A pydantic ``AfterValidator`` calling ``check_text`` (error type ``unsafe_text``,
    which ``service.api.handlers`` answers with that code)."""

    def validate(value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            return check_text(value, info.field_name or "text", multiline=multiline)
        except UnsafeText as exc:
            raise PydanticCustomError("unsafe_text", "{detail}", {"detail": exc.detail}) from None

    return AfterValidator(validate)


SafeLine = Annotated[str, _pydantic_check(multiline=False)]
"""One line of free text (names, labels, locations): ``check_text`` in a wire schema."""
SafeLines = Annotated[str, _pydantic_check(multiline=True)]
"""Multi-line free text (reasons, notes): ``check_text(multiline=True)`` in a wire schema."""
