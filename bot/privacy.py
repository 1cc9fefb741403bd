"""Mask personal data (mainland mobile numbers, order ids, WeChat OpenIDs) before it reaches the logs.

``mask_text`` works on any text; ``MaskingFilter`` applies it to log records and
``install_masking_filter`` wires the filter into the logging tree.  Self-contained (no
project imports) so that every process (Rasa server, action server, tools) can use it.

Note on coverage: a filter on a *logger* only sees records logged on exactly that logger,
while a filter on a *handler* sees every record the handler emits, including those from
child loggers such as ``rasa.core.processor``.  ``install_masking_filter`` does both, but
handlers added after it runs (e.g. by a later logging reconfiguration) need another call.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = [
    "mask_phone",
    "mask_order_id",
    "mask_text",
    "MaskingFilter",
    "install_masking_filter",
    "MASKED_LOGGER_NAMES",
]

#: Loggers that get the filter in addition to the root logger's handlers.
MASKED_LOGGER_NAMES: tuple[str, ...] = ("rasa", "rasa_sdk", "sanic", "aiohttp")

# Half-width and full-width digits; separators tolerated inside a number.
_D = "[0-9０-９]"
_SEP = "[ \t\u00a0\u3000\\-－]{0,2}"
# Not preceded by a digit, except right after a JSON/Python escape such as \u53f7.
_NO_DIGIT_BEFORE = r"(?:(?<![0-9０-９])|(?<=\\u[0-9a-fA-F]{4}))"

_PHONE_RE = re.compile(
    rf"{_NO_DIGIT_BEFORE}(?P<prefix>(?:(?:[+＋]|00|００)\s*)?(?:86|８６){_SEP})?"
    rf"(?P<number>[1１]{_SEP}[3-9３-９](?:{_SEP}{_D}){{9}})(?!{_D})"
)
_ORDER_RE = re.compile(rf"[XxＸｘ]\s?[HhＨｈ](?:{_SEP}{_D}){{12}}(?!{_D})")
# WeChat OpenIDs: 28 characters of base64url starting with "o" (a patron's identity across messages).
_OPENID_RE = re.compile(r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{20}([A-Za-z0-9_-]{4})(?![A-Za-z0-9_-])")


def _digits(text: str) -> str:
    """ASCII digits of ``text`` (full-width digits are converted)."""
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))


def mask_phone(phone: str) -> str:
    """Mask a phone number: ``"13812345678"`` → ``"138****5678"``.

    Separators and a ``+86`` prefix are dropped; numbers of other lengths keep their first
    3 and last 4 digits when at least 8 digits long, otherwise are fully masked.
    """
    digits = _digits(phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) == 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * len(digits)


def mask_order_id(order_id: str) -> str:
    """Mask an order id keeping the first 6 and last 2 characters.

    ``"XH202611230001"`` → ``"XH2026******01"``; input is canonicalised first (upper
    case, half-width, no spaces).  Ids of 8 characters or fewer are fully masked.
    """
    canonical = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", order_id)).upper()
    if len(canonical) <= 8:
        return "*" * len(canonical)
    return canonical[:6] + "*" * (len(canonical) - 8) + canonical[-2:]


def _mask_phone_match(match: re.Match[str]) -> str:
    """Replacement for a phone match: keep any prefix, mask the number."""
    return (match.group("prefix") or "") + mask_phone(match.group("number"))


def mask_text(text: str) -> str:
    """Mask every mainland mobile number and order id inside ``text``.

    Tolerates spaces/dashes inside numbers, ``+86``/``0086``/``86`` prefixes and
    full-width characters.  Masking is idempotent; non-matching text is returned as is.
    """
    if not text:
        return text
    if "o" in text:
        text = _OPENID_RE.sub(r"\1***\2", text)
    if not any(ch.isdigit() for ch in text):
        return text
    text = _ORDER_RE.sub(lambda m: mask_order_id(m.group(0)), text)
    return _PHONE_RE.sub(_mask_phone_match, text)


def _mask_value(value: Any) -> Any:
    """Mask a string argument; leave every other type untouched."""
    return mask_text(value) if isinstance(value, str) else value


class MaskingFilter(logging.Filter):
    """Logging filter that masks phone numbers and order ids in records.

    String ``msg`` and string ``args`` (tuple or mapping, for %-style logging) are masked in
    place, keeping the template.  If the formatted message still contains personal data
    (e.g. it came from a non-string argument such as a dict or an int), the record is
    replaced by its masked, already-formatted message with ``args`` cleared.  Exception
    and stack text is masked too.  The filter never drops a record and never raises.
    """

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging API
        """Mask ``record`` in place and let it through."""
        try:
            self._mask_record(record)
        except Exception:  # masking must never break logging
            pass
        return True

    @staticmethod
    def _mask_record(record: logging.LogRecord) -> None:
        """Apply the masking described in the class docstring."""
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        args = record.args
        if isinstance(args, Mapping):
            record.args = {key: _mask_value(value) for key, value in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(_mask_value(value) for value in args)

        try:
            message = record.getMessage()
        except Exception:  # bad format/args: leave it to logging's own error handling
            message = None
        if message is not None:
            masked = mask_text(message)
            if masked != message:
                record.msg = masked
                record.args = None

        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        elif record.exc_info and record.exc_info[0] is not None:
            # Pre-format only when needed, so custom formatters keep their own output.
            formatted = logging.Formatter().formatException(record.exc_info)
            masked = mask_text(formatted)
            if masked != formatted:
                record.exc_text = masked
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)


_FILTER = MaskingFilter()


def _attach(target: logging.Filterer, masking_filter: MaskingFilter) -> None:
    """Add the filter unless ``target`` already has a MaskingFilter."""
    if not any(isinstance(existing, MaskingFilter) for existing in target.filters):
        target.addFilter(masking_filter)


def install_masking_filter() -> MaskingFilter:
    """Attach the masking filter to the root logger's handlers and to the loggers
    ``rasa``, ``rasa_sdk``, ``sanic`` and ``aiohttp`` (and their handlers).

    Idempotent: calling it again adds nothing twice but covers handlers added since.
    Returns the filter instance.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        _attach(handler, _FILTER)
    for name in MASKED_LOGGER_NAMES:
        logger = logging.getLogger(name)
        _attach(logger, _FILTER)
        for handler in logger.handlers:
            _attach(handler, _FILTER)
    return _FILTER
