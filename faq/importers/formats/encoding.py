"""Bytes to text: UTF-8 first, byte-order marks honoured, legacy encodings guessed
only when the guess is clear, and binary content refused rather than imported as
gibberish."""

import codecs
import re

import charset_normalizer

from faq.importers.formats.base import refused

BYTE_ORDER_MARKS = (
    # UTF-32 first: its little-endian mark starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc, .xls, .ppt)"),
)
# Characters that text files do not hold (tab, newlines and form feed excepted).
CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
NON_ASCII = re.compile("[^\x00-\x7f\ufffd]")
SAMPLE_CHARS = 1_000_000
MAX_CONTROL_SHARE = 0.01
MAX_CHAOS = 0.2  # charset-normalizer's own threshold for a plausible decoding
FAVOURED = "cp1252"  # ties go to the usual legacy encoding of Western help content


def binary_kind(data: bytes) -> str | None:
    """What a binary file is, from its first bytes, for a clearer refusal."""
    for signature, what in SIGNATURES:
        if data.startswith(signature):
            return what
    return None


def decode_text(name: str, data: bytes) -> str:
    """The file's text, or ImportRefused when it is binary or its encoding unclear."""
    for mark, codec, label in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            try:
                return _checked(name, data.decode(codec))
            except UnicodeDecodeError:
                raise refused(
                    name, f"starts with a {label} byte-order mark but is not {label}"
                ) from None
    what = binary_kind(data)
    if what:
        raise refused(name, f"is {what}, not text")
    if b"\x00" in data:
        raise refused(
            name,
            "contains NUL bytes: it is binary, not text "
            "(UTF-16 text needs a byte-order mark)",
        )
    try:
        return _checked(name, data.decode("utf-8"))
    except UnicodeDecodeError as error:
        return _checked(name, _legacy(name, data, error))


def _checked(name: str, text: str) -> str:
    sample = text[:SAMPLE_CHARS]
    if len(CONTROL.findall(sample)) > MAX_CONTROL_SHARE * len(sample):
        raise refused(name, "is binary (full of control characters), not text")
    return text


def _legacy(name: str, data: bytes, error: UnicodeDecodeError) -> str:
    """Text in an older encoding (cp1252, latin-1, cp1251...), if it is clear which."""
    lenient = data.decode("utf-8", "replace")
    invalid = lenient.count("\ufffd")
    if len(NON_ASCII.findall(lenient)) >= invalid:
        # Mostly valid UTF-8 with a few broken bytes: guessing another encoding
        # would turn every accented letter into two wrong ones.
        line = data.count(b"\n", 0, error.start) + 1
        raise refused(
            name,
            f"is not valid UTF-8 (byte 0x{data[error.start]:02x} on line {line}); "
            "save it again as UTF-8",
        )
    encoding = _guess(data)
    if encoding is None:
        raise refused(
            name,
            "is not UTF-8 and its character encoding cannot be told with "
            "confidence; save it as UTF-8",
        )
    return data.decode(encoding)


def _guess(data: bytes) -> str | None:
    """The clearest decoding: least garbled, then most like a language, then cp1252.

    charset-normalizer alone often picks cp1250 or even big5 for short Western
    text, so cp1252 is always weighed as well and wins ties.
    """
    matches = list(charset_normalizer.from_bytes(data))
    matches += list(charset_normalizer.from_bytes(data, cp_isolation=[FAVOURED]))
    plausible = [m for m in matches if m.chaos <= MAX_CHAOS]
    if not plausible:
        return None
    best = min(
        plausible,
        key=lambda m: (
            round(m.chaos, 2),
            -round(m.coherence, 2),
            m.encoding != FAVOURED,
        ),
    )
    return str(best.encoding)
