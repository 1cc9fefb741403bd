"""Entity tidy-up after DIET: implausible values, joined and completed spans, intent relevance."""
from bot.nlu.entity_cleanup import clean


def ent(kind, text, value, start=None):
    start = text.index(value) if start is None else start
    return {"entity": kind, "start": start, "end": start + len(value), "value": value}


def values(entities):
    return [(e["entity"], e["value"]) for e in entities]


def test_implausible_values_dropped():
    text = "微信显示付了70 我旁边的人抽搐了"
    out = clean([ent("phone", text, "70"), ent("party_size", text, "人")], text, "report_order_problem")
    assert out == []


def test_time_pieces_joined_and_completed():
    text = "明天晚上7点后破晓有场吗"
    out = clean([ent("date", text, "明天"), ent("time", text, "晚上"), ent("time", text, "7点后")], text, "ask_showtimes")
    assert values(out) == [("date", "明天"), ("time", "晚上7点后")]
    text = "今晚12点还开着吗"
    assert values(clean([ent("time", text, "12")], text, "ask_cinema_info")) == [("time", "12点")]


def test_weekday_completed():
    text = "4DX的深海回声下周三排了吗"
    assert values(clean([ent("date", text, "下周")], text, "ask_showtimes")) == [("date", "下周三")]


def test_intent_relevance():
    text = "有个老人突然喘不上气"
    assert clean([ent("ticket_type", text, "老人")], text, "report_emergency") == []
    text = "老人票打几折"
    assert values(clean([ent("ticket_type", text, "老人")], text, "ask_ticket_price")) == [("ticket_type", "老人")]
    text = "今天天气怎么样"
    assert clean([ent("date", text, "今天")], text, "out_of_scope") == []


def test_phone_and_order_id_always_kept():
    text = "13812345678"
    assert values(clean([ent("phone", text, text)], text, "goodbye")) == [("phone", text)]


def test_date_pieces_joined():
    text = "12月5号8点左右有什么电影"
    out = clean([ent("date", text, "12月"), ent("date", text, "5号"), ent("time", text, "8点左右")], text, "ask_showtimes")
    assert values(out) == [("date", "12月5号"), ("time", "8点左右")]


def test_store_titles_kept_whatever_the_intent():
    text = "银河快递明天几点有"
    film = dict(ent("film", text, "银河快递"), extractor="KnowledgeEntityExtractor")
    assert values(clean([film, ent("date", text, "明天")], text, "out_of_scope")) == [("film", "银河快递")]


def test_hall_type_span_stops_before_its_hall_word():
    text = "杜比厅和VIP厅今晚多少钱"
    out = clean([ent("hall_type", text, "杜比厅"), ent("hall_type", text, "VIP厅")], text, "ask_ticket_price")
    assert [text[e["start"]:e["end"]] for e in out] == ["杜比", "VIP厅"]
    assert [e["value"] for e in out] == ["杜比厅", "VIP厅"]  # the value the bot reads is kept


def test_a_time_needs_a_time_word_and_a_count_is_no_date():
    text = "中午12点以前的场是不是便宜10块"
    assert values(clean([ent("time", text, "中午12点以前"), ent("time", text, "10")], text, "ask_ticket_price")) == \
        [("time", "中午12点以前")]
    text = "晚上七点半"
    assert values(clean([ent("time", text, "晚上七点")], text, "inform")) == [("time", "晚上七点半")]
    text = "25个人，12月20号"
    assert values(clean([ent("party_size", text, "25个人"), ent("party_size", text, "12")], text, "inform")) == \
        [("party_size", "25个人")]
    text = "200人能包IMAX吗"
    assert values(clean([ent("party_size", text, "200人能")], text, "ask_group_booking")) == [("party_size", "200人")]
