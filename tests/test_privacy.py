"""Tests for bot.privacy: masking helpers, the logging filter and its installation."""
from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.privacy import (
    MASKED_LOGGER_NAMES,
    MaskingFilter,
    install_masking_filter,
    mask_order_id,
    mask_phone,
    mask_text,
)

PHONE = "13812345678"
MASKED_PHONE = "138****5678"
ORDER = "XH202611230001"
MASKED_ORDER = "XH2026******01"


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 13812345678", "138****5678"),
        ("１３８１２３４５６７８", "138****5678"),
        ("4008208800", "400***8800"),
        ("12345", "*****"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, expected: str) -> None:
    assert mask_phone(phone) == expected


@pytest.mark.parametrize(
    ("order_id", "expected"),
    [
        ("XH202611230001", "XH2026******01"),
        ("xh202611230001", "XH2026******01"),
        ("XH 2026 1123 0001", "XH2026******01"),
        ("ＸＨ２０２６１１２３０００１", "XH2026******01"),
        ("XH12", "****"),
    ],
)
def test_mask_order_id(order_id: str, expected: str) -> None:
    assert mask_order_id(order_id) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PHONE, MASKED_PHONE),
        (ORDER, MASKED_ORDER),
        ("我的手机号13812345678，订单XH202611230001",
         "我的手机号138****5678，订单XH2026******01"),
        ("电话 138 1234 5678 谢谢", "电话 138****5678 谢谢"),
        ("电话138-1234-5678", "电话138****5678"),
        ("+86 138 1234 5678", "+86 138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("0086-13812345678", "0086-138****5678"),
        ("１３８１２３４５６７８", MASKED_PHONE),
        ("xh 2026 1123 0001", MASKED_ORDER),
        ("两个号码 13812345678 和 13987654321", "两个号码 138****5678 和 139****4321"),
        ('{"text": "13812345678"}', '{"text": "138****5678"}'),
        ("\\u53f713812345678", "\\u53f7138****5678"),  # after a JSON unicode escape
        ("sender_id=user13812345678", "sender_id=user138****5678"),
        # already masked: unchanged (idempotent)
        (MASKED_PHONE, MASKED_PHONE),
        (MASKED_ORDER, MASKED_ORDER),
        # left alone
        ("", ""),
        ("没有数字", "没有数字"),
        ("热线400-820-8800", "热线400-820-8800"),
        ("金额12345678901", "金额12345678901"),
        ("138123456789", "138123456789"),  # 12 digits: not a phone
        ("T20261123-0007", "T20261123-0007"),
        ("2026-11-23 19:30", "2026-11-23 19:30"),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


# --------------------------------------------------------------------------- MaskingFilter

def make_record(msg: object, args: object = None, exc_info: object = None) -> logging.LogRecord:
    """Build a log record as logger.info(msg, *args) would."""
    if args is None:
        record_args: tuple[object, ...] | object = ()
    else:
        record_args = args
    return logging.LogRecord("rasa.core", logging.INFO, __file__, 1, msg, record_args, exc_info)


class Unprintable:
    """An argument whose repr has no personal data."""

    def __str__(self) -> str:
        return "<obj>"


@pytest.mark.parametrize(
    ("msg", "args", "expected"),
    [
        ("phone %s", (PHONE,), f"phone {MASKED_PHONE}"),
        ("order %s phone %s", (ORDER, PHONE), f"order {MASKED_ORDER} phone {MASKED_PHONE}"),
        (f"already formatted {PHONE}", None, f"already formatted {MASKED_PHONE}"),
        ("%(phone)s", ({"phone": PHONE},), MASKED_PHONE),
        ("count %d, ratio %.1f", (42, 0.5), "count 42, ratio 0.5"),
        ("int phone %s", (13812345678,), f"int phone {MASKED_PHONE}"),
        ("tracker %s", ({"text": PHONE, "n": 1},), "tracker {'text': '138****5678', 'n': 1}"),
        ("list %r", ([PHONE],), f"list ['{MASKED_PHONE}']"),
        ("obj %s none %s", (Unprintable(), None), "obj <obj> none None"),
        ({"msg": PHONE}, None, "{'msg': '138****5678'}"),
        ("no data %s", ("hello",), "no data hello"),
    ],
)
def test_filter_masks_message(msg: object, args: object, expected: str) -> None:
    record = make_record(msg, args)  # LogRecord unwraps a single mapping argument itself
    assert MaskingFilter().filter(record) is True
    assert record.getMessage() == expected


def test_filter_keeps_template_and_non_string_args() -> None:
    sentinel = Unprintable()
    record = make_record("phone %s obj %s n %d", (PHONE, sentinel, 7))
    MaskingFilter().filter(record)
    assert record.msg == "phone %s obj %s n %d"
    assert record.args == (MASKED_PHONE, sentinel, 7)
    assert record.args[1] is sentinel


def test_filter_survives_bad_format_args() -> None:
    record = make_record("needs two %s %s", (PHONE,))
    assert MaskingFilter().filter(record) is True
    assert record.args == (MASKED_PHONE,)


def test_filter_masks_exception_text() -> None:
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError:
        import sys

        record = make_record("failed", None, sys.exc_info())
    MaskingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert PHONE not in formatted
    assert MASKED_PHONE in formatted


# --------------------------------------------------------------------------- installation

@pytest.fixture()
def root_stream() -> Iterator[io.StringIO]:
    """A StringIO handler on the root logger; every MaskingFilter is removed afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s|%(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        targets: list[logging.Filterer] = [handler, *root.handlers]
        for name in MASKED_LOGGER_NAMES:
            logger = logging.getLogger(name)
            targets.append(logger)
            targets.extend(logger.handlers)
        for target in targets:
            for existing in list(target.filters):
                if isinstance(existing, MaskingFilter):
                    target.removeFilter(existing)


def count_filters(target: logging.Filterer) -> int:
    """Number of MaskingFilter instances on a logger or handler."""
    return sum(isinstance(f, MaskingFilter) for f in target.filters)


def test_install_attaches_everywhere_and_is_idempotent(root_stream: io.StringIO) -> None:
    first = install_masking_filter()
    second = install_masking_filter()
    assert first is second
    for handler in logging.getLogger().handlers:
        assert count_filters(handler) == 1
    for name in ("rasa", "rasa_sdk", "sanic", "aiohttp"):
        assert count_filters(logging.getLogger(name)) == 1


@pytest.mark.parametrize(
    "logger_name", ["rasa", "rasa.core.processor", "rasa_sdk.executor", "sanic.access", "other"]
)
def test_installed_filter_masks_output(root_stream: io.StringIO, logger_name: str) -> None:
    install_masking_filter()
    logger = logging.getLogger(logger_name)
    logger.info("user said %s", f"手机{PHONE} 订单{ORDER}")
    logger.info(f"formatted {PHONE}")
    logger.info("number %d", 5)
    output = root_stream.getvalue()
    assert PHONE not in output and ORDER not in output
    assert f"{logger_name}|user said 手机{MASKED_PHONE} 订单{MASKED_ORDER}" in output
    assert f"{logger_name}|formatted {MASKED_PHONE}" in output
    assert f"{logger_name}|number 5" in output
