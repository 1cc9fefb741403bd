"""Service flows against SQLite: complaint tickets, form validation, emergencies, handoff, durable queue."""
from __future__ import annotations

import asyncio

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import service
import yaml

from actions.forms import (ValidateComplaintForm, ValidateGroupBookingForm, ValidateMessageForm, ValidateOrderProblemForm,
                           ValidateRefundForm)
from bot.db import session_factory, session_scope
from bot.kb import loader
from bot.models import Ticket
from bot.tickets import handoff
from tests.conftest import ROOT


def tickets(url):
    with session_scope(url) as s:
        return [(t.number, t.type, t.priority, t.contact_phone, t.category, dict(t.facts)) for t in s.query(Ticket).order_by(Ticket.id)]


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_picture_complaint_alerts_onsite_then_collects_facts(kb_url, tracker_factory, run_action):
    texts, events, _ = run_action(service.ActionComplain(), tracker_factory("画面一直模糊，什么破影院", "complain"))
    assert "非常理解您的感受" in texts[0]  # empathy first (anger detected)
    assert "10分钟内到场" in texts[1] and "全额退款或免费改签" in texts[1]
    slots = slots_of(events)
    assert slots["complaint_category"] == "播放质量" and slots["complaint_onsite"] is True
    [(number, kind, priority, phone, category, facts)] = tickets(kb_url)
    assert kind == "complaint" and priority == 2 and category == "播放质量"
    texts, _, _ = run_action(service.ActionSubmitComplaint(), tracker_factory("13812345678", "inform", slots={
        **slots, "phone": "13812345678", "complaint_when": "1号厅 19:30", "complaint_wish": "退票"}))
    assert f"工单号{number}" in texts[0]
    [(_, _, _, phone, _, facts)] = tickets(kb_url)
    assert phone == "13812345678" and facts["wish"] == "退票"


def test_environment_complaint_logged_at_submit(kb_url, tracker_factory, run_action):
    _, events, _ = run_action(service.ActionComplain(), tracker_factory("空调有点冷，能调高一点吗", "complain"))
    assert tickets(kb_url) == []  # not on-site: the ticket comes with the facts
    texts, _, _ = run_action(service.ActionSubmitComplaint(), tracker_factory("13912345678", "inform", slots={
        **slots_of(events), "phone": "13912345678", "complaint_when": "7号厅", "complaint_wish": "调温度"}))
    assert "工单号T" in texts[0] and "前回复您" in texts[0]
    assert tickets(kb_url)[0][4] == "环境卫生"


def _validate(form, tracker, domain):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, tracker, domain))
    return dispatcher.messages, slots_of(events)


def test_invalid_phone_reasked_twice_then_human(kb_url, tracker_factory, domain):
    form = ValidateComplaintForm()
    base = {"requested_slot": "phone", "complaint_detail": "x", "complaint_when": "y", "complaint_wish": "z"}
    msgs, slots = _validate(form, tracker_factory("123", "inform", slots={**base, "phone": "123"},
                                                  active_loop="complaint_form", filled=["phone"]), domain)
    assert msgs[0]["response"] == "utter_invalid_phone" and slots["phone"] is None and slots["form_retries"] == 1
    msgs, slots = _validate(form, tracker_factory("12345", "inform", slots={**base, "phone": "12345", "form_retries": 2},
                                                  active_loop="complaint_form", filled=["phone"]), domain)
    assert msgs[0]["response"] == "utter_form_too_many_tries" and slots["needs_human"] is True


def test_vague_head_count_gets_specific_reask(kb_url, tracker_factory, domain):
    msgs, slots = _validate(ValidateGroupBookingForm(), tracker_factory(
        "很多人", "inform", slots={"requested_slot": "party_size", "party_size": "很多人"},
        active_loop="group_booking_form", filled=["party_size"]), domain)
    assert msgs[0]["response"] == "utter_invalid_party_size" and slots["party_size"] is None
    msgs, slots = _validate(ValidateGroupBookingForm(), tracker_factory(
        "三十个人", "inform", slots={"requested_slot": "party_size", "party_size": "三十个人"},
        active_loop="group_booking_form", filled=["party_size"]), domain)
    assert slots["party_size"] == "30人"


def test_side_question_mid_form_is_answered_and_form_resumes(kb_url, tracker_factory, domain):
    msgs, slots = _validate(ValidateComplaintForm(), tracker_factory(
        "停车怎么收费", "ask_parking", slots={"requested_slot": "phone", "phone": "停车怎么收费"},
        active_loop="complaint_form", confidence=0.97, filled=["phone"]), domain)
    assert "每小时5元" in msgs[0]["text"] and slots["phone"] is None and "form_retries" not in slots


def test_refund_form_verdict_from_showtime(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(service.ActionSubmitRefund(), tracker_factory("好", "affirm", slots={
        "order_id": "XH202611230001", "phone": "13812345678", "purchase_channel": "猫眼",
        "refund_show": "明天星际归途21:10"}))
    assert "原平台" in texts[0] and tickets(kb_url) == []
    texts, _, _ = run_action(service.ActionSubmitRefund(), tracker_factory("好", "affirm", slots={
        "order_id": "XH202611230001", "phone": "13812345678", "purchase_channel": "小程序",
        "refund_show": "后天星际归途晚上9点"}))
    assert "免费退票" in texts[0] and any("工单号T" in t for t in texts)
    assert tickets(kb_url)[0][1] == "refund" and tickets(kb_url)[0][5]["film"] == "星际归途"


def test_refund_form_ends_for_a_ticket_bought_elsewhere(kb_url, tracker_factory, domain, run_action):
    """「我是在前台付现金买的」 when the order id was asked: no order id to give, so the form ends and its submit
    says the counter refunds it (and files no ticket)."""
    from actions.forms import ValidateRefundForm

    text = "我是在前台付现金买的"
    msgs, slots = _validate(ValidateRefundForm(), tracker_factory(text, "inform", slots={
        "requested_slot": "order_id", "order_id": text}, active_loop="refund_form", filled=["order_id"]), domain)
    assert slots["purchase_channel"] == "前台" and slots["order_id"] is None and slots["requested_slot"] is None
    texts, _, _ = run_action(service.ActionSubmitRefund(), tracker_factory("好", "affirm", slots={
        "purchase_channel": "前台"}))
    assert "前台购票凭购票凭证到前台办理" in texts[0] and tickets(kb_url) == []


def test_refund_fee_from_the_show_clock_time():
    import datetime as dt

    from bot.answers.topics import minutes_until_clock

    three_pm = dt.datetime(2026, 12, 2, 15, 0)
    assert minutes_until_clock("是今晚9点的，现在才下午3点", dt.datetime(2026, 12, 2, 8, 0)) == 360
    assert minutes_until_clock("3点半那场", three_pm) == 30
    assert minutes_until_clock("是明天的", three_pm) is None and minutes_until_clock("退票手续费多少", three_pm) is None


def test_emergency_first_reply_then_ticket(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(service.ActionEmergency(), tracker_factory("影厅里有人晕倒了", "report_emergency"))
    assert "400-820-8800" in texts[0] and "120" in texts[0]
    assert tickets(kb_url)[0][1:3] == ("emergency", 1)
    assert "工单号T" in texts[1]


def _always_open(kb_url):
    files = loader.read_dir(ROOT / "knowledge")
    files["cinema.yml"] = files["cinema.yml"].replace(b'start: "09:00"', b'start: "00:00"')
    with session_scope(kb_url) as s:
        loader.publish(s, files, author="test")


def test_handoff_queues_and_pauses_when_agent_online(kb_url, tracker_factory, run_action):
    _always_open(kb_url)
    with session_scope(kb_url) as s:
        handoff.heartbeat(s, "agent-a", online=True)
    texts, events, _ = run_action(service.ActionRequestHuman(), tracker_factory("转人工", "request_human"))
    assert "马上为您接通" in texts[0] and "前面还有" not in texts[0]  # nobody ahead: no 「您前面还有0位」
    assert any(e.get("event") == "pause" for e in events)
    with session_scope(kb_url) as s:
        assert [c.sender_id for c in handoff.queue(s)] == ["patron-1"]


def test_handoff_right_after_a_complaint_takes_its_ticket(kb_url, tracker_factory, run_action):
    from bot.kb.store import KnowledgeStore
    from bot.tickets import store

    _always_open(kb_url)
    sla = KnowledgeStore(session_factory(kb_url)).get().section("complaints")["sla_minutes"]
    with session_scope(kb_url) as s:
        complaint = store.create_ticket(s, type="complaint", channel="socketio", sender_id="patron-1",
                                        facts={"detail": "空调太冷"}, sla=sla).number
        handoff.heartbeat(s, "agent-a", online=True)
    run_action(service.ActionRequestHuman(), tracker_factory("转人工", "request_human"))
    assert [t[1] for t in tickets(kb_url)] == ["complaint"]  # no second ticket
    with session_scope(kb_url) as s:
        assert handoff.get_conversation(s, "patron-1").ticket_number == complaint


def test_handoff_takes_message_when_nobody_online(kb_url, tracker_factory, run_action):
    _always_open(kb_url)
    texts, events, _ = run_action(service.ActionRequestHuman(), tracker_factory("转人工", "request_human"))
    assert "客服人员暂时都不在线" in texts[0] and "工单号T" in texts[0]
    assert "不在人工服务时间" not in texts[0]  # inside the hours: not the out-of-hours message
    assert not any(e.get("event") == "pause" for e in events)
    # the patron leaves the message, then a phone: both go on that handoff ticket
    assert any(e.get("event") == "followup" and e.get("name") == "message_form" for e in events)
    [(number, kind, *_)] = tickets(kb_url)
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    form = ValidateMessageForm()
    msgs, slots = _validate(form, tracker_factory("那我留言吧：会员生日券一直没到账，帮我查一下", "inform", slots={
        "requested_slot": "leave_message", "leave_message": "那我留言吧：会员生日券一直没到账，帮我查一下"},
        active_loop="message_form", filled=["leave_message"]), domain)
    assert slots["leave_message"] == "会员生日券一直没到账，帮我查一下"
    msgs, slots = _validate(form, tracker_factory("12345678901", "inform", slots={
        "requested_slot": "phone", "leave_message": "会员生日券一直没到账", "phone": "12345678901"},
        active_loop="message_form", filled=["phone"]), domain)
    assert msgs[0]["response"] == "utter_invalid_phone" and slots["phone"] is None
    texts, _, _ = run_action(service.ActionSubmitMessage(), tracker_factory("13428861057", "inform", slots={
        "leave_message": "会员生日券一直没到账", "phone": "13428861057"}))
    assert number in texts[0] and "134****1057" in texts[0]
    [(_, _, _, phone, _, facts)] = tickets(kb_url)
    assert phone == "13428861057" and facts["message"] == "会员生日券一直没到账"


def test_asking_when_people_answer_gets_the_hours_and_no_ticket(kb_url, tracker_factory, run_action):
    _always_open(kb_url)
    texts, events, _ = run_action(service.ActionRequestHuman(), tracker_factory("人工客服现在这个点还在吗", "request_human"))
    assert "09:00–24:00" in texts[0] and "转人工" in texts[-1]
    assert not any("工单号" in t for t in texts)  # a question about the hours opens no ticket
    texts, _, _ = run_action(service.ActionRequestHuman(), tracker_factory("现在有人吗，帮我转人工", "request_human"))
    assert "工单号T" in texts[0]


def test_handoff_outside_service_hours_says_so(kb_url, tracker_factory, run_action, monkeypatch):
    import actions.escalation as escalation

    monkeypatch.setattr(escalation.queue, "in_service_hours", lambda *a, **k: False)
    with session_scope(kb_url) as s:
        handoff.heartbeat(s, "agent-a", online=True)  # online, but the hours decide
    texts, _, _ = run_action(service.ActionRequestHuman(), tracker_factory("转人工", "request_human"))
    assert "不在人工服务时间" in texts[0] and "09:00–24:00" in texts[0]


def test_ticket_kept_when_database_down_then_flushed(kb_url, tracker_factory, run_action, tmp_path, monkeypatch):
    import actions.tickets as at
    from bot.tickets.durable import TicketWriter

    down = TicketWriter(lambda: session_factory("postgresql://xinghe@127.0.0.1:1/down")(), tmp_path / "queue")
    monkeypatch.setattr(at, "_writer", down)
    texts, _, _ = run_action(service.ActionSubmitLostItem(), tracker_factory("13812345678", "inform", slots={
        "lost_item": "黑色钱包", "lost_where": "3号厅 19:30", "seat": "7排8号", "phone": "13812345678"}))
    assert "登记已安全保存" in texts[0]
    assert tickets(kb_url) == [] and len(down.pending()) == 1
    up = TicketWriter(lambda: session_factory(kb_url)(), tmp_path / "queue")
    assert up.flush() == 1 and up.flush() == 0
    [(number, kind, _, phone, _, facts)] = tickets(kb_url)
    assert kind == "lost_item" and phone == "13812345678" and facts["item"] == "黑色钱包"


@pytest.mark.parametrize("form,slot,bad,good,expected,response", [
    ("order", "order_id", "12345", "xh 2026 1123 0001", "XH202611230001", "utter_invalid_order_id"),
    ("refund", "refund_show", "随便哪场", "明天星际归途晚上", "明天星际归途晚上", "utter_invalid_refund_show"),
    ("group", "booking_time", "尽快吧", "下周六下午", "下周六下午", "utter_invalid_booking_time"),
])
def test_form_validation_reasks_specifically(kb_url, tracker_factory, domain, form, slot, bad, good, expected, response):
    from actions.forms import ValidateGroupBookingForm, ValidateOrderProblemForm, ValidateRefundForm

    validator = {"order": ValidateOrderProblemForm, "refund": ValidateRefundForm, "group": ValidateGroupBookingForm}[form]()
    loop = validator.form
    msgs, slots = _validate(validator, tracker_factory(bad, "inform", slots={"requested_slot": slot, slot: bad},
                                                       active_loop=loop, filled=[slot]), domain)
    assert msgs[0]["response"] == response and slots[slot] is None
    msgs, slots = _validate(validator, tracker_factory(good, "inform", slots={"requested_slot": slot, slot: good},
                                                       active_loop=loop, filled=[slot]), domain)
    assert slots[slot] == expected
    if form == "refund":  # the rules for that show are said at once: tomorrow is more than 2 hours away
        assert len(msgs) == 1 and "免费退票" in msgs[0]["verdict"]
    else:
        assert not msgs


def test_group_booking_rules_from_store(kb_url, tracker_factory, run_action):
    texts, _, _ = run_action(service.ActionSubmitGroupBooking(), tracker_factory("不需要", "deny", slots={
        "contact_name": "王先生", "phone": "13812345678", "party_size": "12人", "booking_time": "明天下午",
        "film": "熊猫总动员", "hall_pref": "都可以", "invoice": "不需要"}))
    joined = "\n".join(texts)
    assert "满20人即可享团体价" in joined and "工单号T" in joined and "1个工作日内回电" in joined
    assert tickets(kb_url)[0][1] == "group_booking"


# ----------------------------------------------------------------------------- session 3: forms that bend
def test_value_and_question_in_one_turn(kb_url, tracker_factory, domain):
    """「订单XH…，对了多扣的钱会退到哪里」: the order id is taken and the question answered."""
    text = "订单XH202610250031，对了多扣的钱会退到哪里"
    msgs, slots = _validate(ValidateOrderProblemForm(), tracker_factory(
        text, "inform", [{"entity": "order_id", "value": "XH202610250031"}],
        slots={"requested_slot": "order_id", "order_id": "XH202610250031"}, active_loop="order_problem_form",
        filled=["order_id"]), domain)
    assert slots["order_id"] == "XH202610250031"
    assert any("原路" in (m.get("text") or "") for m in msgs), msgs


def test_free_text_value_then_aside(kb_url, tracker_factory, domain):
    text = "昨晚9点那场雾都疑案。对了你们人工客服几点下班"
    msgs, slots = _validate(ValidateComplaintForm(), tracker_factory(
        text, "inform", slots={"requested_slot": "complaint_when", "complaint_when": text},
        active_loop="complaint_form", filled=["complaint_when"]), domain)
    assert slots["complaint_when"].startswith("昨晚9点那场雾都疑案")
    assert any("24:00" in (m.get("text") or "") for m in msgs), msgs


def test_a_question_is_never_a_wrong_phone(kb_url, tracker_factory, domain):
    text = "你们这种投诉一般多久给回复"
    msgs, slots = _validate(ValidateComplaintForm(), tracker_factory(
        text, "complain", slots={"requested_slot": "phone", "phone": text, "complaint_category": "其他"},
        active_loop="complaint_form", filled=["phone"], confidence=0.4), domain)
    said = " ".join(m.get("text") or m.get("response") or "" for m in msgs)
    assert "24小时" in said and "手机号好像不对" not in said and "form_retries" not in slots


def test_correction_replaces_a_value_already_given(kb_url, tracker_factory, domain):
    text = "不好意思说错了，人数改成三十个人"
    form = ValidateGroupBookingForm()
    tracker = tracker_factory(text, "inform", slots={"requested_slot": "phone", "party_size": "20人"},
                              active_loop="group_booking_form")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.get_extraction_events(dispatcher, tracker, domain))
    assert {"event": "slot", "name": "party_size", "value": "30人"}.items() <= \
        next(e for e in events if e.get("name") == "party_size").items()
    assert any(m.get("response") == "utter_value_corrected" and m.get("value") == "30人" for m in dispatcher.messages)


def test_question_about_the_complaint_just_filed(kb_url, tracker_factory, run_action):
    ctx = {"topic": "complaint", "values": {"category": "环境卫生"}}
    texts, events, _ = run_action(service.ActionComplain(), tracker_factory(
        "能补偿点啥吗", "complain", slots={"topic_context": ctx}))
    assert texts == ["客服可先为您补偿一张饮料券表示歉意。"] and tickets(kb_url) == []


def test_second_request_for_a_person_reuses_the_ticket(kb_url, tracker_factory, run_action):
    texts1, _, _ = run_action(service.ActionRequestHuman(), tracker_factory("转人工", "request_human"))
    texts2, _, _ = run_action(service.ActionRequestHuman(), tracker_factory("人工几点有人", "request_human"))
    assert len(tickets(kb_url)) == 1
    assert tickets(kb_url)[0][0] in texts2[-1]


def test_emergency_mode_ends_after_its_turns(kb_url, tracker_factory, run_action):
    ctx = {"topic": None, "values": {}, "emergency_turns": 1, "emergency_ticket": "T20261201-0001"}
    _, events, _ = run_action(service.ActionRequestHuman(), tracker_factory("电话13812345678", "inform",
                                                                             slots={"topic_context": ctx}))
    after = next(e["value"] for e in events if e.get("name") == "topic_context")
    assert after["emergency_turns"] == 0 and after["emergency_ticket"] is None


def test_a_wish_said_when_the_phone_is_asked_is_the_complaints_handling(kb_url, tracker_factory, domain):
    """「能唔能调高啲」 after an air-conditioning complaint: the handling again and the wish kept, no "答不上来"."""
    text = "能不能调高点"
    msgs, slots = _validate(ValidateComplaintForm(), tracker_factory(
        text, "nlu_fallback", slots={"requested_slot": "phone", "phone": text, "complaint_category": "环境卫生"},
        active_loop="complaint_form", filled=["phone"], confidence=0.35), domain)
    said = " ".join(m.get("text") or m.get("response") or "" for m in msgs)
    assert "24小时" in said and "答不上来" not in said and slots["complaint_wish"] == text and slots["phone"] is None


def test_group_booking_says_a_film_is_not_showing(kb_url, tracker_factory, domain):
    form = ValidateGroupBookingForm()
    tracker = tracker_factory("看流浪地球3", "inform", slots={"requested_slot": "phone", "party_size": "60人"},
                              active_loop="group_booking_form")
    dispatcher = CollectingDispatcher()
    asyncio.run(form.get_extraction_events(dispatcher, tracker, domain))
    assert any(m.get("response") == "utter_film_not_showing" and m.get("film") == "流浪地球3" for m in dispatcher.messages)


def test_a_correction_while_the_name_is_asked_is_no_name(kb_url, tracker_factory, domain):
    """「等等，人数写错了，是二十八个」 when the contact name is asked: the size is corrected, the name still asked."""
    text = "等等，人数写错了，是二十八个"
    msgs, slots = _validate(ValidateGroupBookingForm(), tracker_factory(
        text, "inform", slots={"requested_slot": "contact_name", "contact_name": text, "party_size": "25人",
                               "booking_time": "12月20号", "film": "钢铁洪流"},
        active_loop="group_booking_form", filled=["contact_name"]), domain)
    assert slots["party_size"] == "28人" and slots.get("contact_name") is None
    assert any(m.get("response") == "utter_value_corrected" and m.get("value") == "28人" for m in msgs)


def test_an_emergency_inside_a_complaint_is_not_its_showing(kb_url, tracker_factory, domain):
    """「我孩子刚在1号厅台阶上摔了…」 when the complaint's showing is asked: no slot taken, so the emergency rule runs."""
    text = "我孩子刚在1号厅台阶上摔了，头磕破流血了"
    form = ValidateComplaintForm()
    tracker = tracker_factory(text, "report_emergency", slots={"requested_slot": "complaint_when",
                                                               "complaint_detail": "台阶太黑"},
                              active_loop="complaint_form")
    events = asyncio.run(form.get_extraction_events(CollectingDispatcher(), tracker, domain))
    assert not any(e.get("name") == "complaint_when" for e in events)


def test_asking_for_the_hotline_or_the_manager_gets_the_stores_answer_and_no_ticket(kb_url, tracker_factory, run_action):
    _always_open(kb_url)
    texts, _, _ = run_action(service.ActionRequestHuman(), tracker_factory("能不能给我一个人工客服的电话", "request_human"))
    assert "400-820-8800" in texts[0] and "转人工" in texts[-1] and not any("工单号" in t for t in texts)
    texts, _, _ = run_action(service.ActionRequestHuman(), tracker_factory("经理现在在吗", "request_human"))
    assert "值班经理" in texts[0] and not any("工单号" in t for t in texts)


def test_a_checked_self_help_step_gets_the_next_one_from_the_store(kb_url, tracker_factory, domain):
    """「日期是今天的，影城也是星河滨江店，没错」 after a code that does not scan: the counter, not the order id again."""
    opening = {"event": "user", "text": "取票码扫不出来", "timestamp": 0,
               "parse_data": {"text": "取票码扫不出来", "intent": {"name": "report_order_problem", "confidence": 0.9}}}
    text = "日期是今天的，影城也是星河滨江店，没错"
    msgs, slots = _validate(ValidateOrderProblemForm(), tracker_factory(
        text, "inform", slots={"requested_slot": "order_id", "order_id": text}, active_loop="order_problem_form",
        filled=["order_id"], events=[opening]), domain)
    said = " ".join(m.get("text") or "" for m in msgs)
    assert "前台" in said and "手机号" in said and slots["order_id"] is None
    assert not any(m.get("response") == "utter_invalid_order_id" for m in msgs)


# ----------------------------------------------------------------------------- session 12: after a form is filed
def test_a_correction_after_filing_amends_the_ticket(kb_url, tracker_factory, run_action):
    """「人数打错了，是二十五个」「号码错了，是139…」 right after the booking was filed: that ticket, amended and said so."""
    from actions.dialogue import ActionRoute

    run_action(service.ActionSubmitGroupBooking(), tracker_factory("不需要", "deny", slots={
        "contact_name": "周丽", "phone": "13300002222", "party_size": "22人", "booking_time": "12月20号下午",
        "film": "深海回声", "hall_pref": "普通厅", "invoice": "不需要"}))
    [(number, _, _, _, _, facts)] = tickets(kb_url)
    assert facts["party_size"] == 22
    filed = {"topic_context": {"topic": "group_booking", "values": {}}}
    texts, _, _ = run_action(ActionRoute(), tracker_factory("人数打错了，是二十五个", "inform", slots=filed))
    assert texts == [f"好的，工单{number}的人数已更正为 25人。"]
    texts, _, _ = run_action(ActionRoute(), tracker_factory("号码错了，是13900004444", "inform", slots=filed))
    assert texts == [f"好的，工单{number}的手机号已更正为 139****4444。"]
    [(_, _, _, phone, _, facts)] = tickets(kb_url)
    assert facts["party_size"] == 25 and phone == "13900004444"


def test_a_correction_of_another_patrons_or_an_old_topic_amends_nothing(kb_url, tracker_factory, run_action):
    from actions.dialogue import ActionRoute

    run_action(service.ActionSubmitGroupBooking(), tracker_factory("不需要", "deny", slots={
        "contact_name": "周丽", "phone": "13300002222", "party_size": "22人", "booking_time": "12月20号下午",
        "film": "深海回声", "hall_pref": "普通厅", "invoice": "不需要"}))
    run_action(ActionRoute(), tracker_factory("人数打错了，是二十五个", "inform", sender="patron-2",
                                              slots={"topic_context": {"topic": "group_booking", "values": {}}}))
    run_action(ActionRoute(), tracker_factory("人数打错了，是二十五个", "inform",
                                              slots={"topic_context": {"topic": "parking", "values": {}}}))
    assert tickets(kb_url)[0][5]["party_size"] == 22


def test_a_no_that_asks_goes_on_with_the_form(kb_url, tracker_factory, run_action):
    """「要是修不好呢」 read as deny inside the complaint form: the remedy, and the form goes on — nothing cancelled."""
    slots = {"complaint_category": "播放质量", "requested_slot": "phone",
             "topic_context": {"topic": "complaint", "values": {"category": "播放质量"}}}
    texts, events, _ = run_action(service.ActionStopForm(), tracker_factory(
        "要是修不好呢", "deny", slots=slots, active_loop="complaint_form"))
    assert "全额退款或免费改签" in "".join(texts) and "已取消" not in "".join(texts)
    assert events[-1] == {"event": "followup", "name": "complaint_form", "timestamp": None}
    texts, events, _ = run_action(service.ActionStopForm(), tracker_factory(
        "算了不登记了", "deny", slots=slots, active_loop="complaint_form"))
    assert texts == ["好的，已取消这次登记。需要时随时找我。"]
