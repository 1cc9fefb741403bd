"""Unit tests of the informational actions against a SQLite store with the shipped knowledge."""
from __future__ import annotations

import datetime as dt

import pytest

from actions import topics
from actions.dialogue import ActionClarify, ActionRoute
from actions.common import now


def _ctx(events):
    return next(e["value"] for e in events if e.get("name") == "topic_context")


def next_weekday(code: int) -> dt.date:
    today = now().date()
    return today + dt.timedelta(days=(code - today.weekday()) % 7)


def test_price_for_hall_and_day_then_followups(kb_url, tracker_factory, run_action):
    texts, events, _ = run_action(topics.ActionTicketPrice(), tracker_factory(
        "IMAX周六多少钱", "ask_ticket_price", [{"entity": "hall_type", "value": "IMAX"}, {"entity": "date", "value": "周六"}]))
    assert "85元" in texts[0] and "IMAX激光厅" in texts[0]
    ctx = _ctx(events)
    texts, events, _ = run_action(ActionRoute(), tracker_factory(
        "那周二呢", "inform", [{"entity": "date", "value": "周二"}], slots={"topic_context": ctx}))
    assert "70元" in texts[0], texts
    texts, _, _ = run_action(ActionRoute(), tracker_factory(
        "学生呢", "inform", [{"entity": "ticket_type", "value": "学生"}], slots={"topic_context": _ctx(events)}))
    assert "56元" in texts[0], texts  # 70 × 0.8 on a weekday with a student card


def test_student_price_not_on_weekend(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionTicketPrice(), tracker_factory(
        "周六学生票IMAX多少", "ask_ticket_price",
        [{"entity": "date", "value": "周六"}, {"entity": "ticket_type", "value": "学生"}, {"entity": "hall_type", "value": "IMAX"}]))
    assert "85元" in texts[0] and "周一至周五" in texts[0]


def test_member_day_half_price(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionTicketPrice(), tracker_factory(
        "周二会员看杜比多少钱", "ask_ticket_price",
        [{"entity": "date", "value": "周二"}, {"entity": "ticket_type", "value": "会员"}, {"entity": "hall_type", "value": "杜比"}]))
    assert "37.5元" in texts[0]


def test_price_table_without_hall(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionTicketPrice(), tracker_factory("票价多少", "ask_ticket_price"))
    assert "VIP厅：周一至周四120元，周五至周日及节假日150元" in texts[0]
    assert "早场优惠" in texts[0]


def test_showtimes_for_film_date_window_and_hall(kb_url, tracker_factory, run_action):
    tomorrow = now().date() + dt.timedelta(days=1)
    texts, _, _ = run_action(topics.ActionShowtimes(), tracker_factory(
        "明天晚上IMAX有星际归途吗", "ask_showtimes",
        [{"entity": "date", "value": "明天"}, {"entity": "time", "value": "晚上"}, {"entity": "hall_type", "value": "IMAX"},
         {"entity": "film", "value": "星际归途"}]))
    assert "《星际归途》" in texts[0] and "21:10" in texts[0] and "1号厅" in texts[0]
    assert "10:00" not in texts[0] and "2号厅" not in texts[0]
    assert f"{tomorrow.month}月{tomorrow.day}日" in texts[0]


def test_showtimes_unknown_film_never_invents_times(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionShowtimes(), tracker_factory(
        "明天有阿凡达吗", "ask_showtimes", [{"entity": "film", "value": "阿凡达"}, {"entity": "date", "value": "明天"}]))
    assert "没有《阿凡达》的排片" in texts[0] and "《星际归途》" in texts[0]
    assert ":" not in texts[0].split("正在上映")[0]


def test_showtimes_by_alias(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionShowtimes(), tracker_factory(
        "后天熊猫几点", "ask_showtimes", [{"entity": "film", "value": "熊猫"}, {"entity": "date", "value": "后天"}]))
    assert "《熊猫总动员》" in texts[0] and "10:10" in texts[0]


def test_showtimes_outside_range(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionShowtimes(), tracker_factory("下下周六有什么电影", "ask_showtimes"))
    assert "7天" in texts[0]


def test_refund_forty_minutes_before(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionRefundPolicy(), tracker_factory("开场前40分钟还能退吗", "ask_refund_policy"))
    assert "10%手续费" in texts[0] and "最低3元" in texts[0]
    texts, _, _ = run_action(topics.ActionRefundPolicy(), tracker_factory("提前三个小时退票要钱吗", "ask_refund_policy"))
    assert "免费退票" in texts[0]
    texts, _, _ = run_action(topics.ActionRefundPolicy(), tracker_factory("开场后还能退吗", "ask_refund_policy"))
    assert "不可退票" in texts[0]
    texts, _, _ = run_action(topics.ActionRefundPolicy(), tracker_factory("猫眼买的票怎么退", "ask_refund_policy"))
    assert "原平台" in texts[0]


@pytest.mark.parametrize("text,entities,hours", [
    ("看电影停车免费吗", [], "3小时"),
    ("看IMAX停车免费多久", [{"entity": "hall_type", "value": "IMAX"}], "免费停车4小时"),
    ("金卡会员停车免费几小时", [], "免费停车5小时"),
])
def test_parking(kb_url, tracker_factory, run_action, text, entities, hours):
    texts, _, _ = run_action(topics.ActionParking(), tracker_factory(text, "ask_parking", entities))
    assert hours in texts[0] and "5元" in texts[0] and "40元" in texts[0]


def test_points_exchange_for_given_points(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionMemberPoints(), tracker_factory("1200积分能换什么", "ask_member_points"))
    assert "普通厅2D观影券" in texts[0] and "中杯可乐" in texts[0] and "升级券" not in texts[0]
    texts, _, _ = run_action(topics.ActionMemberPoints(), tracker_factory("我有三百分能换啥", "ask_member_points"))
    assert "最低500积分" in texts[0]


def test_member_level_and_facilities(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionMemberBenefits(), tracker_factory("金卡有什么权益", "ask_member_benefits"))
    assert "购票9折" in texts[0]
    texts, _, _ = run_action(topics.ActionFacilities(), tracker_factory(
        "有母婴室吗", "ask_facilities", [{"entity": "facility", "value": "母婴室"}]))
    assert "尿布台" in texts[0]
    texts, _, _ = run_action(topics.ActionViewingRules(), tracker_factory("能带奶茶进去吗", "ask_viewing_rules"))
    assert "包装食品和饮料" in texts[0]


def test_film_info_and_hall_types(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(topics.ActionFilmInfo(), tracker_factory(
        "深海回声讲的什么", "ask_film_info", [{"entity": "film", "value": "深海回声"}]))
    assert "小鲸鱼" in texts[0]  # the question asked: what it is about
    texts, _, _ = run_action(topics.ActionFilmInfo(), tracker_factory(
        "深海回声", "ask_film_info", [{"entity": "film", "value": "深海回声"}]))
    assert "105分钟" in texts[0] and "小鲸鱼" in texts[0]  # no specific question: the whole card
    texts, _, _ = run_action(topics.ActionHallTypes(), tracker_factory(
        "4DX是什么体验", "ask_hall_types", [{"entity": "hall_type", "value": "4DX"}]))
    assert "水雾" in texts[0] and "120座" in texts[0]
    texts, _, _ = run_action(topics.ActionCinemaInfo(), tracker_factory("你们在哪", "ask_cinema_info"))
    assert "滨江路88号" in texts[0] and "地铁2号线" in texts[0]
    texts, _, _ = run_action(topics.ActionCinemaInfo(), tracker_factory("客服电话多少", "ask_cinema_info"))
    assert "400-820-8800" in texts[0]


def test_editor_change_shows_in_next_answer(kb_url, tracker_factory, run_action):
    from bot.db import session_scope
    from bot.kb import loader
    from tests.conftest import ROOT

    files = loader.read_dir(ROOT / "knowledge")
    files["parking.yml"] = files["parking.yml"].replace(b"fee_per_hour: 5", b"fee_per_hour: 6")
    with session_scope(kb_url) as session:
        loader.publish(session, files, author="editor")
    texts, _, _ = run_action(topics.ActionParking(), tracker_factory("停车怎么收费", "ask_parking"))
    assert "每小时6元" in texts[0]


def test_clarify_offers_top_two_then_human(kb_url, tracker_factory, run_action):
    tracker = tracker_factory("那个呢啊", "nlu_fallback")
    tracker.latest_message["intent_ranking"] = [
        {"name": "nlu_fallback", "confidence": 0.4}, {"name": "ask_parking", "confidence": 0.35},
        {"name": "ask_ticket_price", "confidence": 0.3}]
    texts, events, messages = run_action(ActionClarify(), tracker)
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads == ["/ask_parking", "/ask_ticket_price", "/request_human"]
    texts, events, messages = run_action(ActionClarify(), tracker_factory("嗯嗯那个", "nlu_fallback", slots={"fallback_count": 1}))
    # the second miss offers a person; no ticket is opened behind the patron's back
    assert "转接人工" in texts[0] and not any("工单号" in t for t in texts)
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/request_human"]


def test_specific_answer_offers_three_follow_ups_of_its_topic(kb_url, tracker_factory, run_action):
    import yaml

    from tests.conftest import ROOT

    _, _, messages = run_action(topics.ActionParking(), tracker_factory("停车场限高多少", "ask_parking"))
    buttons = messages[-1]["buttons"]
    questions = yaml.safe_load((ROOT / "knowledge" / "questions.yml").read_text(encoding="utf-8"))["questions"]
    parking = {q["examples"][0] for q in questions if q["topic"] == "parking" and q["key"] != "parking_height"}
    assert 1 <= len(buttons) <= 3 and {b["title"] for b in buttons} <= parking
    assert all(b["payload"] == b["title"] for b in buttons)  # picked, it is asked like a typed question
