"""The answering layer without Rasa: facets matched in context, context carried across turns, templates,
text folding and the emergency guard, against a SQLite store with the shipped knowledge."""
from __future__ import annotations

import pytest

from bot.answers.context import DialogueContext, is_elliptical
from bot.answers.replies import render as render_message
from bot.answers.turn import answer_turn


@pytest.fixture()
def k(kb_url):
    from bot.kb.store import default_store

    return default_store().get()


class Chat:
    """One patron's conversation through ``answer_turn``, as the actions drive it."""

    def __init__(self, k):
        self.k, self.ctx = k, DialogueContext()

    def say(self, text, topic=None, confidence=0.9, entities=()):
        turn = answer_turn(self.k, self.ctx, topic, confidence, text, [
            {"entity": e, "value": v} for e, v in entities])
        self.ctx = turn.context
        self.turn = turn
        return "\n".join(render_message(m) for m in turn.replies.messages)


def test_specific_question_not_the_brochure(k):
    chat = Chat(k)
    assert "VIP厅除外" in chat.say("VIP厅早场也打折吗", "ticket_price", entities=[("hall_type", "VIP厅")])
    reply = chat.say("普卡有生日礼吗", "member_benefits")
    assert "银卡及以上" in reply and chat.turn.facet == "member_birthday"
    assert "充电费另计" in chat.say("充电要另外收钱吗", "facilities", 0.6)


def test_follow_ups_keep_topic_and_values(k):
    chat = Chat(k)
    assert "3小时" in chat.say("看电影停车免费吗", "parking")
    assert "每日封顶40元" in chat.say("超过的时间怎么算", None, 0.4)  # a facet of the current topic
    assert "4小时" in chat.say("那看杜比呢", None, 0.5, [("hall_type", "杜比")])  # the topic, a new value
    chat.say("星际归途明天几点", "showtimes", entities=[("film", "星际归途"), ("date", "明天")])
    assert "148分钟" in chat.say("它多长时间", "film_info", 0.7)  # 它 → the film said before
    assert "积分商城" in chat.say("在哪换", "member_points", 0.5)


def test_elliptical_question_of_another_topic(k):
    chat = Chat(k)
    chat.say("深海回声适合小孩吗", "film_info", entities=[("film", "深海回声")])
    reply = chat.say("改签也扣吗", None, 0.4)
    assert "10%手续费" in reply and chat.turn.topic == "refund_policy"


def test_computed_answer_wins_over_look_alike_facet(k):
    chat = Chat(k)
    reply = chat.say("周六学生票IMAX多少", "ticket_price",
                     entities=[("date", "周六"), ("ticket_type", "学生"), ("hall_type", "IMAX")])
    assert "85元" in reply and chat.turn.facet is None
    assert "15元" in Chat(k).say("看普通厅停了6个小时 要交多少停车费", "parking")
    assert "手续费4元" in Chat(k).say("40块的票开场前1小时退 扣多少", "refund_policy")


def test_same_facet_answers_a_new_value(k):
    chat = Chat(k)
    chat.say("开场后多久不让进", "viewing_rules")
    reply = chat.say("IMAX厅也是这样吗", None, 0.5, [("hall_type", "IMAX厅")])
    assert "IMAX厅开场后10分钟" in reply and chat.turn.facet == "rules_late_entry"


def test_unknown_film_is_not_showing(k):
    reply = Chat(k).say("《无名之地》多长", "film_info", 0.8)
    assert "无名之地" in reply and "《星际归途》" in reply and "分钟" not in reply


def test_nothing_informational_is_not_handled(k):
    turn = answer_turn(k, DialogueContext(), None, 0.9, "谢谢", [], allow_follow_up=False)
    assert not turn.handled


def test_context_carries_film_and_date_across_topics_only():
    ctx = DialogueContext(topic="ticket_price", values={"date": "周六", "hall_type": "IMAX", "ticket_type": "学生"})
    assert ctx.values_for("ticket_price", {}, "那周二呢") == {"date": "周六", "hall_type": "IMAX", "ticket_type": "学生"}
    assert ctx.values_for("parking", {}, "停车怎么收费") == {"date": "周六"}
    assert ctx.values_for("parking", {}, "那个厅免费停多久")["hall_type"] == "IMAX"  # pointed at
    after = ctx.after("parking", None, {"hall_type": "杜比"})
    assert after.values == {"date": "周六", "hall_type": "杜比"} and after.topic == "parking"
    assert DialogueContext.from_slot(after.to_slot()) == after
    assert is_elliptical("那周二呢") and is_elliptical("IMAX厅也是这样吗") and not is_elliptical("停车场在哪里啊")


def test_facet_added_by_editor_answers_at_once(kb_url):
    from bot.db import session_scope
    from bot.kb import loader
    from bot.kb.store import default_store
    from tests.conftest import ROOT

    files = loader.read_dir(ROOT / "knowledge")
    files["questions.yml"] += ("\n  - key: parking_motorbike\n    topic: parking\n    examples: [电动车能停吗, 摩托车停哪里]\n"
                               "    answer: \"电动车请停在地面非机动车位；{parking.location}\"\n").encode()
    files["parking.yml"] = files["parking.yml"].replace(b"daily_cap: 40", b"daily_cap: 45")
    with session_scope(kb_url) as session:
        loader.publish(session, files, author="editor")
    chat = Chat(default_store().get())
    assert "非机动车位" in chat.say("电动车可以停吗", "parking", 0.8)
    assert "封顶45元" in chat.say("一天最多收多少", "parking")


def test_template_errors_are_rejected_with_line():
    from bot.kb import loader
    from tests.conftest import ROOT

    files = loader.read_dir(ROOT / "knowledge")
    files["questions.yml"] = files["questions.yml"].replace(b"{parking.beyond}", b"{parking.nothing_here}", 1)
    with pytest.raises(loader.KnowledgeError) as err:
        loader.validate(files)
    text = str(err.value)
    assert "questions.yml:" in text and "parking_overtime" in text and "nothing_here" in text
    line = int(text.split("questions.yml:")[1].split(":")[0])
    assert "parking_overtime" in files["questions.yml"].decode().splitlines()[line - 1]


def test_lexicon_variant_of_digits_is_rejected():
    from bot.kb import loader
    from tests.conftest import ROOT

    files = loader.read_dir(ROOT / "knowledge")
    files["lexicon.yml"] += "\n  - {to: 再见, variants: [88], kind: 口语}\n".encode()
    with pytest.raises(loader.KnowledgeError) as err:
        loader.validate(files)
    assert "only digits" in str(err.value)


@pytest.mark.parametrize("text,folded", [
    ("退票要幾多手續費", "退票要多少手续费"),
    ("睇ＩＭＡＸ可唔可以免費泊車", "看IMAX可不可以免费停车"),
    ("在吗在吗？？？？", "在吗在吗?"),
    ("退 票 要 多 少", "退票要多少"),
    ("tp怎么弄😀", "退票怎么弄"),
    ("我电话１３８８８８８８８８８", "我电话13888888888"),  # digits never collapse
    ("imax 3d", "IMAX 3D"),
    ("🆘🆘 7号厅", "SOSSOS 7号厅"),  # an emoji the lexicon names is kept as its word
    ("佢食爆谷骾親，講唔到嘢", "它食爆谷哽亲,说不出话"),
])
def test_folding(text, folded):
    import yaml

    from bot.text.normalise import fold, lexicon_from_section
    from tests.conftest import ROOT

    lexicon = lexicon_from_section(yaml.safe_load((ROOT / "knowledge" / "lexicon.yml").read_text(encoding="utf-8")))
    result = fold(text, lexicon)
    assert result.text == folded
    # every folded character maps back into the patron's own text
    assert result.original_span(0, len(result.text)) == (0, len(text.rstrip("😀")))  # a dropped emoji maps to nothing


@pytest.mark.parametrize("text,intent,emergency", [
    ("旁边大爷捂着胸口叫不应", "complain", True),
    ("3号厅冒烟了！", "ask_hall_types", True),
    ("孕妇能看4DX吗", "report_emergency", False),
    ("心脏不好能坐动感座椅吗", "report_emergency", False),
    ("电影里着火那段好逼真", "give_feedback", False),
    ("空调冷死人了", "complain", False),
    # someone named and what is happening to them, in words the cue list does not have
    ("我外婆刚才突然嘴唇发紫了", "complain", True),
    # told afterwards: a complaint or thanks, not an alarm — unless it is happening now
    ("上周我在你们楼梯摔了一跤，到现在都没人管", "complain", False),
    ("上次有人晕倒你们叫救护车很及时，谢谢", "give_feedback", False),
    ("上次也是这样，现在我妈又晕倒了快来人", "complain", True),
    # asking whether someone may watch, whatever the classifier leaned to
    ("我有高血压 4DX会不会有危险", "report_emergency", False),
    ("我朋友晚饭喝了不少酒 他能去吗", "report_emergency", False),
    ("我爸有高血压能坐不", "report_emergency", False),
    # a what-if, a facility question, or over already: no alarm, whatever the classifier read
    ("如果有人晕倒你们怎么处理", "report_emergency", False),
    ("着火了应该往哪跑", "report_emergency", False),
    ("刚才那个晕倒的大爷已经被120接走了，谢谢你们", "report_emergency", False),
    ("孩子发烧了来不了，今天的票能退吗", "report_emergency", False),
    ("孩子的外套落在IMAX厅了", "report_lost_item", False),
    ("我儿子的书包不见了", "report_lost_item", False),
    ("救命，买错场次了，还能改签吗", "report_emergency", False),
    ("后排有人在抽烟，烟味好大", "report_emergency", False),
    ("星际归途结尾那场爆炸我都哭了", "report_emergency", False),
    # a child missing now, help asked for, or what is seen described
    ("我弟弟才七岁，说去厕所就一直没回来", "complain", True),
    ("我肚子好痛 痛得站不起来 我怀孕了 在卫生间这 能不能来个人", "report_emergency", True),
    ("厕所里有人抽烟把垃圾桶点着了", "complain", True),
    ("不是开玩笑 真的有人晕倒了 就在你们大厅 没人管吗", "report_emergency", True),
    ("3号厅这烟到底是特效还是真着火了？？味道好呛", "report_emergency", True),
    # a call-back number, a rude look, a video app, a condition told, help already come: nobody in danger
    ("有人捡到一串钥匙吗，捡到打我电话15566667777", "report_emergency", False),
    ("前台小姐姐翻白眼什么意思？？？", "report_emergency", False),
    ("垃圾影院，检票员不让我带奶茶进去！我要发抖音", "complain", False),
    ("那我老公可以吧，不过他有高血压", "report_emergency", False),
    ("救护车来了。团体票刚才说要提前多久订", "report_emergency", False),
    ("我们已经出来了。刚才说的，黑钻卡积分呢", "report_emergency", False),
    ("那我再叫几个人，凑二十二个", "report_emergency", False),
    ("给孩子看ok吗，孩子10岁", "report_emergency", False),
    # … while the same words with someone in danger still are one
    ("保安来了但是他还是没反应", "complain", True),
    ("我老公突然翻白眼了", "complain", True),
    ("有人打我", "complain", True),
    # a hurried request, the news, a pet, a false alarm, a carry-in question: nobody in danger here …
    ("我快到了，堵车堵死了，开场后还能进吗", "report_emergency", False),
    ("带哮喘喷雾进影厅没问题吧", "report_emergency", False),
    ("火锅店着火那个新闻你看了没", "report_emergency", False),
    ("我家猫走丢了怎么办", "report_emergency", False),
    ("火警铃刚才误响了一下，结果啥事没有，能不能别乱响", "report_emergency", False),
    ("卖品部有没有不含坚果的零食，孩子过敏", "report_emergency", False),
    ("排队排到我要晕倒了，多开几个窗口行不行", "report_emergency", False),
    ("隔壁厅在放钢铁洪流，轰隆隆的爆炸声一直传过来", "report_emergency", False),
    # … while a growing fire, the kit asked for someone now, a child gone, someone not waking are
    ("烟越来越大了，我们现在往哪个门跑", "complain", True),
    ("5号厅有人心脏停了，有没有AED", "report_emergency", True),
    ("我让孩子在游戏区等我取票，回来人就没了", "complain", True),
    ("他还是没醒，你们的人到底什么时候到", "complain", True),
    ("隔壁厅传过来好大的爆炸声，然后就有烟从墙缝进来了", "report_emergency", True),
    # a lost thing described is no emergency; a child described still is
    ("红色羊毛的 有流苏", "report_emergency", False),
    ("黑色双肩包，有个熊猫挂件", "report_emergency", False),
    ("我女儿七岁，穿粉红色裙子，找了半天没看到", "report_emergency", True),
    # a cry for help about a ticket is no emergency; with someone hurt it still is
    ("救命，我的电子票找不到了，马上开场了", "report_emergency", False),
    ("救命 有人晕倒了 我的票也丢了", "report_emergency", True),
    ("我孩子刚在1号厅台阶上摔了，头磕破流血了", "complain", True),
    # grave symptoms anywhere in a long message; a complaint's tone, a wait, a reason to refund are none
    ("喂你好我老公刚才看完4DX下来就一直说心口很闷很痛还出冷汗手也是麻的我们现在在3号厅门口的椅子上坐着怎么办啊", "complain", True),
    ("我推着轮椅到6号厅，门口没人帮忙，通道那还堆着杂物，太不像话了", "report_emergency", False),
    ("检票的小姑娘态度太差了，翻白眼给谁看", "report_emergency", False),
    ("过了快二十分钟了", "report_emergency", False),
    ("孩子有点发烧，今晚的票想退，离开场还有五个小时", "report_emergency", False),
    ("孩子走丢了，票能退吗", "complain", True),
    ("不对，我搞错了，他其实17岁了，那雾都疑案能看吧", "report_emergency", False),
    # dev_emergency7: labour, a frail relative gone, smoke that is no effect, threats, bleeding
    ("老婆怀孕八个月，看到一半肚子一阵一阵地疼，越来越密，我们在2号厅", "complain", True),
    ("我爸坐着轮椅，我去取票的功夫他就不在原地了", "complain", True),
    ("银幕后面有一点亮光在跳，还有黑烟往上飘，看着不像是电影里的", "complain", True),
    ("4DX的烟雾特效我知道是什么样的，但这次冒的是黑烟，还有股胶皮味", "ask_hall_types", True),
    ("他就说散场在门口等着我，还叫了好几个人过来，现在就守在出口", "complain", True),
    ("血还是止不住，你们的人到底在哪", "ask_hall_types", True),
    ("你好我想改签，我老婆突然肚子剧痛站不起来了", "request_refund", True),
    # … and what is none
    ("五岁小孩能看4DX吗，怕他被晃吐了", "report_emergency", False),
    ("我个仔发烧,今晚来不到,仲退不退得", "report_emergency", False),
    ("我腿骨折了走不了路，明天的IMAX票帮我退掉", "report_emergency", False),
    ("我要退票，家里老人摔伤了我得去医院陪护", "report_emergency", False),
    ("地震的时候躲在哪里比较安全", "report_emergency", False),
    ("破晓行动讲什么的，是不是有很多爆炸和枪战", "report_emergency", False),
    ("不用了，他自己缓过来了，不需要派人", "report_emergency", False),
    ("上次我阿妈在这晕倒,你们的职员好快来帮手,想赞下他们", "report_emergency", False),
    ("红色羽绒服，小孩穿的，帽子上有毛", "report_emergency", False),
    ("我孩子不见了，穿红色羽绒服", "inform", True),
    # a knife drawn, a harasser at the door; not: a phone gone, praise, a how-to, a cry about a showing
    ("他说了两句就掏出刀来了", "complain", True),
    ("有个男的一直敲门不走，还说些很恶心的话，我不敢出去", "complain", True),
    ("快来人，我爸噎住了，海姆立克怎么做", "report_emergency", True),
    ("在你们这丢了手机，肯定被谁私吞了", "report_emergency", False),
    ("你们的爆米花好吃到爆炸", "report_emergency", False),
    ("海姆立克急救法怎么做", "report_emergency", False),
    ("救命，明天下午还有熊猫总动员吗", "report_emergency", False),
    ("我要投诉检票的工作人员！！态度极差，我问一句他直接翻白眼", "complain", False),
    ("工作人员快来，我爸突然翻白眼了", "complain", True),
])
def test_emergency_guard(text, intent, emergency):
    import yaml

    from bot.answers.emergency import decide
    from tests.conftest import ROOT

    e = yaml.safe_load((ROOT / "knowledge" / "complaints.yml").read_text(encoding="utf-8"))["emergency"]
    assert decide(text, intent, e["cues"], e["rule_words"]) is emergency


def test_holiday_and_both_day_prices(k):
    chat = Chat(k)
    assert "55元" in chat.say("五一放假那天普通厅3d多少", "ticket_price") and "五一" in chat.say("五一普通厅3D多少", "ticket_price")
    assert "原价" in Chat(k).say("拿学生证五一普通厅能打折不", "ticket_price")  # no student price on a holiday
    both = Chat(k).say("IMAX周一到周四是多少钱然后周末又是多少", "ticket_price")
    assert "70元" in both and "85元" in both


def test_two_questions_of_a_topic_in_one_message_and_known_films_among_words(k):
    both = Chat(k).say("星际归途讲什么的，多长时间", "film_info")
    assert "深空勘探队" in both and "148分钟" in both
    chat = Chat(k)
    assert "112分钟" not in chat.say("追光少年是喜剧吗", "film_info") and "没有" not in chat.say("追光少年是喜剧吗", "film_info")
    assert "笑料百出" in Chat(k).say("那哪部是喜剧 想看点搞笑的", "film_info")


def test_group_price_is_the_days_price_at_the_group_discount(k):
    reply = Chat(k).say("IMAX周六团体票多少钱一张", "ticket_price", entities=[("hall_type", "IMAX")])
    assert "85元" in reply and "76.5元" in reply


def test_misspelt_title_is_the_film_not_an_unknown_one(k):
    chat = Chat(k)
    assert "148分钟" in chat.say("星际归图多长时间", "film_info")  # one character wrong: the film meant
    assert "没有" in chat.say("长风渡口今天有场吗", "showtimes")  # an unknown title stays unknown


def test_points_said_as_a_bare_number_in_a_points_conversation(k):
    chat = Chat(k)
    assert "中杯可乐" in chat.say("我有900分能换啥", "member_points")
    assert "观影券" in chat.say("那1500呢", None, 0.5)
    assert "双人套餐" in chat.say("3k分能换什么", "member_points")


def test_facility_follow_up_and_decisive_words(k):
    chat = Chat(k)
    chat.say("手机没电了哪里充电", "facilities")
    assert "5楼大厅" in chat.say("在哪", None, 0.36)  # the facility again, not the cinema's address
    chat = Chat(k)
    chat.say("雾都疑案讲什么的", "film_info", entities=[("film", "雾都疑案")])
    assert "16岁" in chat.say("我家孩子8岁能看吗", "viewing_rules", 0.6)  # the film's age advice
    assert "不支持退票" in Chat(k).say("会员日买的半价票能退吗", "refund_policy")
    reply = Chat(k).say("老人本来就有八折，能跟团体价一起打吗", "group_booking")
    assert "不可叠加" in reply


def test_matcher_folds_synonyms_and_lexicon(k):
    from bot.answers import facets

    index = facets.index_for(k)
    # 咋/怎么, 超了/超出: the same question in other words
    assert index.match("停车超了咋收费", ["parking"])[0].facet.key == "parking_overtime"
    assert index.prepare("请问在哪里停车") == index.prepare("在哪儿停车")


def test_price_without_a_day_gives_both_and_a_discount_gives_the_full_price_too(k):
    both = Chat(k).say("VIP厅多少钱", "ticket_price", entities=[("hall_type", "VIP厅")])
    assert "120元" in both and "150元" in both
    elderly = Chat(k).say("老人周四看杜比多少钱", "ticket_price", entities=[("hall_type", "杜比")])
    assert "75元" in elderly and "60元" in elderly  # the full price, and the 8折 one


def test_unknown_titles_near_known_ones_and_in_brackets(k):
    for text, title in (("星际穿越还在放吗", "星际穿越"), ("功夫熊猫4有几点的场", "功夫熊猫4")):
        reply = Chat(k).say(text, "showtimes")
        assert f"《{title}》" in reply and "没有" in reply
    assert "《消失的她2》" in Chat(k).say("明晚有没有《消失的她2》", "showtimes", entities=[("film", "《消失")])
    assert "想问下" not in Chat(k).say("想问下4DX几点有场", "showtimes", entities=[("hall_type", "4DX")])


def test_points_to_the_next_level_and_points_a_spend_earns(k):
    assert "还差200分" in Chat(k).say("我今年积分4800了，还差多少能升金卡", "member_points")
    assert "150分" in Chat(k).say("黑钻卡消费100块积多少分", "member_benefits")
    assert "2000积分" in Chat(k).say("升级券能升4DX吗", None, 0.35, [("hall_type", "4DX")])


def test_form_values_read_in_passing():
    from actions import form_values
    from actions.forms import PHONE_TRIED

    assert form_values.party_size("我们单位要订团体票，三十个人，不对，是三十五个") == "35人"
    assert form_values.seat("6号厅，昨天下午3点追光少年，座位忘了") == "不记得"
    assert form_values.wish_requested("能不能调高点") and not form_values.wish_requested("能不能告诉我多久处理")
    assert PHONE_TRIED.search("我希望他道歉，电话1381234567") and not PHONE_TRIED.search("订单XH202611230001")


def test_questions_ending_in_me_and_waiting_is_no_emergency():
    from bot.answers.ask import is_question
    from bot.answers.emergency import decide

    assert is_question("都过了一天了还能退么😤") and not is_question("好嘛") and not is_question("要那么多钱")
    assert decide("多久有人处理", "report_emergency", [], []) is False


def test_unknown_titles_told_any_way_and_misspelt_known_ones(k):
    for text, title in (("长安的荔枝今天有场吗", "长安的荔枝"), ("想看寄生虫", "寄生虫"), ("你们放不放功夫熊猫", "功夫熊猫")):
        reply = Chat(k).say(text, "showtimes" if "荔枝" in text else None, 0.35,
                            [("film", "长安")] if "荔枝" in text else [("film", "熊猫")] if "熊猫" in text else [])
        assert f"《{title}》" in reply and "没有" in reply, text
    assert "没有" in Chat(k).say("飞驰人生3的票多少钱", "ticket_price", entities=[("film", "飞驰人生3")])
    assert "全年龄" in Chat(k).say("熊猫总动圆适合小孩吗", "film_info", 0.5, [("film", "熊猫")])
    assert "笑料百出" in Chat(k).say("想看喜剧", "film_info")


def test_refund_times_said_loosely_and_day_words():
    from bot.answers.ask import entity_values
    from bot.answers.topics import minutes_before_show, ticket_price_in

    assert minutes_before_show("那1.5个钟呢") == 90 and minutes_before_show("开场前三个钟能改签吗") == 180
    assert minutes_before_show("要是迟到没进去票能退吗") < 0
    assert ticket_price_in("那IMAX 85的票 开场前一个小时改签扣多少") == 85
    assert entity_values("周3呢", [])["date"] == "周3" and "date" not in entity_values("我坐5排6号", [])


def test_values_the_current_topic_cannot_use_go_back_to_the_topic_before(k):
    chat = Chat(k)
    chat.say("杜比影院周五晚上多少钱", "ticket_price", entities=[("hall_type", "杜比影院"), ("date", "周五")])
    chat.say("杜比厅有什么特别的", "hall_types", entities=[("hall_type", "杜比厅")])
    reply = chat.say("周四早上11点那场呢", None, 0.9, [("date", "周四"), ("time", "早上11点")])
    assert "65元" in reply and chat.turn.topic == "ticket_price"


def test_unknown_titles_after_the_asking_words_and_store_words_are_no_titles(k):
    for text, title in (("你们这有银河护卫队吗", "银河护卫队"), ("明天有没有放夜行者", "夜行者"), ("周末能看到山海经吗", "山海经")):
        reply = Chat(k).say(text, None, 0.35)
        assert f"《{title}》" in reply and "没有" in reply, text
    for text in ("有没有增高垫", "有没有吸烟区", "营业到几点啊", "有没有无障碍电梯"):
        for topic, confidence in (("facilities", 0.6), (None, 0.35)):
            assert "暂时没有《" not in Chat(k).say(text, topic, confidence), text


def test_premiere_price_question_is_the_special_screenings_rule(k):
    chat = Chat(k)
    chat.say("IMAX早场多少钱", "ticket_price", entities=[("hall_type", "IMAX")])
    reply = chat.say("首映场也是这个价吗", "ticket_price", 0.75)
    assert chat.turn.facet == "price_special" and "会员日" not in reply


def test_correction_re_asks_the_last_question_with_the_new_value(k):
    from bot.answers.correction import corrected

    assert corrected("不对，我说的是周三") == "周三" and corrected("哦不是学生，是老人") == "老人"
    assert corrected("打错了，是500分") == "500分" and corrected("不好意思搞错了，我是银卡") == "银卡"
    assert corrected("不对劲，画面很暗") is None and corrected("这部不是3D吗") is None
    chat = Chat(k)
    chat.say("IMAX周六票价", "ticket_price", entities=[("hall_type", "IMAX"), ("date", "周六")])
    assert "70元" in chat.say("不对，我说的是周三", "complaint", 0.4, [("date", "周三")])
    chat.say("学生票周四多少钱，普通2D", "ticket_price", entities=[("ticket_type", "学生"), ("date", "周四")])
    reply = chat.say("哦不是学生，是老人", None, 0.3, [("ticket_type", "学生"), ("ticket_type", "老人")])
    assert "身份证" in reply and "学生证" not in reply


def test_correction_is_no_emergency():
    from bot.answers.emergency import decide

    assert not decide("打错了，是500分", "report_emergency", ["打架"], [], 0.97)
    assert not decide("啊我说错了，是杜比厅", "report_emergency", ["打架"], [], 0.97)
    assert decide("不对，有人晕倒了", "report_emergency", ["晕倒"], [], 0.97)
    assert not decide("等等，人数写错了，是二十八个", "report_emergency", ["打架"], [], 0.97)


def test_correction_names_what_was_wrong_and_the_new_value():
    from bot.answers.correction import corrected, new_value

    assert corrected("不对不对，是5号厅，我记错了") == "5号厅" and corrected("等等，人数写错了，是二十八个") == "二十八个"
    assert corrected("手机号打错了，应该是13812345678") == "13812345678"
    assert new_value("不对不对，是5号厅，我记错了") == "5号厅"
    assert new_value("不是的，不用了") is None and new_value("不对") is None


def test_help_arriving_ends_the_emergency_and_leaves_the_question():
    from bot.answers.emergency import is_over, without_over

    assert is_over("它醒了，谢谢") and not is_over("叫不醒了 怎么办")
    assert without_over("保安来了。刚才说的积分，人工能帮我查吗") == "刚才说的积分，人工能帮我查吗"
    assert without_over("它醒了，谢谢。刚才问的，冷饮入4DX可以吗") == "刚才问的，冷饮入4DX可以吗"
    assert without_over("好的，谢谢") == "好的，谢谢" and without_over("叫不醒了，怎么办") == "叫不醒了，怎么办"


def test_refund_fee_follow_up_keeps_the_time_said_before(k):
    chat = Chat(k)
    assert "17元" in chat.say("我买了两张IMAX周六的票，一共170，开场前一个半小时退要扣多少", "refund_policy")
    assert "4元" in chat.say("那如果是普通厅40块一张呢", None, 0.4)
    assert "3元" in chat.say("早场30块的票呢", None, 0.4)


def test_unknown_film_asked_by_price_or_after_it_was_said(k):
    chat = Chat(k)
    assert "没有《猫咪侦探社》" in chat.say("猫咪侦探社多少钱一张", "ticket_price", 0.95)
    chat.say("时光邮差上映了没", None, 0.35)
    assert "没有《时光邮差》" in chat.say("什么时候上啊", None, 0.35)


def test_hours_stated_ask_the_fee_and_a_points_ticket_refund_is_a_refund_question(k):
    assert "5元" in Chat(k).say("我看的IMAX，停了5个小时", "parking", entities=[("hall_type", "IMAX")])
    chat = Chat(k)
    reply = chat.say("积分换的观影券兑的票能退吗", "member_points", 0.8)
    assert "不支持退票" in reply and chat.turn.topic == "refund_policy"


def test_svm_reranks_a_topics_facets_by_the_words_that_tell_them_apart(k):
    from bot.answers import facets

    def best(text, topic):
        return next(m.facet.key for m in facets.index_for(k).match(text) if m.facet.topic == topic)

    # the nearest single example of each shares more characters with another facet's
    assert best("拿观影券兑的票，能退款么", "refund_policy") == "refund_special"
    assert best("老人能便宜不", "ticket_price") == "price_elderly"
    assert best("能带外面的食物进去吗？", "viewing_rules") == "outside_food"


def test_a_film_to_see_the_store_does_not_have(k):
    from bot.answers.turn import unknown_film_to_see

    assert unknown_film_to_see(k, "我们公司六十人想包场看流浪地球3") == "流浪地球3"
    assert unknown_film_to_see(k, "单位组织50人看《长安三万里》") == "长安三万里"
    assert unknown_film_to_see(k, "那就看流浪地球3吧") == "流浪地球3"
    for text in ("我们公司六十人想包场看星际归途", "看完再说", "看情况吧", "想看个喜剧", "想包场看IMAX"):
        assert unknown_film_to_see(k, text) is None, text


def test_seats_asked_while_booking_a_group_are_the_halls_seats(k):
    chat = Chat(k)
    chat.ctx.topic = "group_booking"
    assert "40座" in chat.say("VIP厅最多坐多少人", "group_booking", 0.8, [("hall_type", "VIP厅")])


def test_a_title_the_store_lacks_after_another_topic_is_not_showing(k):
    chat = Chat(k)
    chat.say("星际归途周六IMAX多少钱", "ticket_price", entities=[("film", "星际归途"), ("date", "周六"), ("hall_type", "IMAX")])
    assert "没有《龙猫》" in chat.say("那龙猫呢", None, 0.38)
    chat = Chat(k)
    chat.say("星际归途周六IMAX多少钱", "ticket_price", entities=[("film", "星际归途"), ("date", "周六"), ("hall_type", "IMAX")])
    assert "没有《山海密码》" in chat.say("周六下午山海密码几点有", "showtimes", 0.82, [("date", "周六"), ("time", "下午")])
    assert "没有《Dune 3》" in Chat(k).say("有Dune 3吗", "showtimes", 0.45)
    assert "没有《熊出没》" in Chat(k).say("熊出没在哪个厅放", None, 0.35)
    chat = Chat(k)
    chat.say("星际归途周六IMAX多少钱", "ticket_price", entities=[("film", "星际归途"), ("date", "周六"), ("hall_type", "IMAX")])
    for follow in ("那学生呢", "那4DX呢", "那明天呢"):
        assert "排片。目前正在上映" not in chat.say(follow, None, 0.4), follow


def test_which_of_two_halls_by_price_or_seats(k):
    chat = Chat(k)
    chat.say("杜比和IMAX有什么区别", "hall_types", entities=[("hall_type", "杜比"), ("hall_type", "IMAX")])
    assert chat.say("哪个贵", None, 0.4).startswith("杜比影院更贵")
    assert chat.say("哪个座位多", "hall_types", 0.6).startswith("IMAX激光厅座位更多") and "420座" in chat.turn.replies.messages[0]["text"]
    assert Chat(k).say("杜比和IMAX哪个便宜", "hall_types", entities=[("hall_type", "杜比"), ("hall_type", "IMAX")]) \
        .startswith("IMAX激光厅更便宜")


def test_halls_by_what_they_have_and_a_films_other_halls(k):
    chat = Chat(k)
    chat.say("我有高血压，能坐4DX吗", "viewing_rules", entities=[("hall_type", "4DX")])
    assert "杜比影院" in chat.say("那有躺椅的厅吗", None, 0.4)
    reply = Chat(k).say("哪个厅有轮椅位", "hall_types")
    assert "1号厅" in reply  # the wheelchair question's own answer, not the hall description's
    chat = Chat(k)
    chat.say("破晓行动4DX今天几点", "showtimes", entities=[("film", "破晓行动"), ("hall_type", "4DX")])
    reply = chat.say("那还有什么厅能看", None, 0.4)
    assert "IMAX" in reply and "普通厅" in reply and chat.turn.facet == "film_halls"


def test_member_level_price_and_earned_points_carry_over(k):
    chat = Chat(k)
    assert "76.5元" in chat.say("周六IMAX金卡算下来多少", "ticket_price", entities=[("hall_type", "IMAX"), ("date", "周六")])
    assert "80.75元" in chat.say("银卡呢", None, 0.4)
    chat = Chat(k)
    assert "240分" in chat.say("金卡花200块能积多少分", "member_points")
    assert "360分" in chat.say("打错了，是花了300块", None, 0.0)
    assert "450分" in chat.say("黑钻呢", None, 0.3)


def test_another_discount_on_top_is_the_no_stacking_rule(k):
    chat = Chat(k)
    chat.say("老人周三看巨幕多少钱", "ticket_price", entities=[("ticket_type", "老人"), ("hall_type", "巨幕"), ("date", "周三")])
    chat.say("周三上午十点那场还能再减10块吗", "ticket_price", entities=[("date", "周三"), ("time", "上午十点")])
    assert chat.turn.facet == "price_stacking"


def test_a_sentence_word_is_no_film_title(k):
    from bot.answers.ask import entity_values

    assert "film" not in entity_values("要是看3D版本", [{"entity": "film", "value": "要是"}])
    assert entity_values("看雾都疑案", [{"entity": "film", "value": "雾都疑案"}])["film"] == "雾都疑案"
    assert "没有《要是》" not in Chat(k).say("要是看3D版本", None, 0.3)


def test_money_keeps_what_a_discount_makes():
    from bot.answers.ask import money

    assert (money(80.75), money(76.5), money(40.0), money(9.5)) == ("80.75", "76.5", "40", "9.5")


def test_where_and_what_inside_ask_of_the_item_just_answered(k):
    """「在哪」「里面有什么」 after the VIP lounge, 「在哪个位置」 after the couple seats: that item, not the address."""
    chat = Chat(k)
    chat.say("VIP休息区谁能用", "vip_service", 1.0, [("hall_type", "VIP")])
    assert "8号厅旁" in chat.say("在哪", None, 0.35)
    assert "免费饮品" in chat.say("里面有什么", None, 0.35)
    chat = Chat(k)
    chat.say("有情侣座吗", "hall_types", 0.91)
    assert "最后一排" in chat.say("在哪个位置", "cinema_info", 0.51)


def test_a_day_after_a_film_not_showing_is_still_that_film(k):
    chat = Chat(k)
    assert "没有《唐人街探案4》" in chat.say("唐人街探案4明天几点", "showtimes", 0.71,
                                       [("film", "唐人街探案4"), ("date", "明天")])
    assert "没有《唐人街探案4》" in chat.say("后天呢", None, 0.99, [("date", "后天")])


def test_parking_keeps_the_member_level_said_before(k):
    chat = Chat(k)
    chat.say("你们不是说金卡停车免5小时吗，为什么收我钱", "parking", 0.99)
    reply = chat.say("我停了7个小时", "parking", 0.93)
    assert "金卡会员可免费停车5小时" in reply and "需付10元" in reply


def test_an_announced_question_of_another_topic_is_no_follow_up(k):
    """「那我问一下退款是退到哪里」 after the parking height (IMAX said before): the refund rule, not parking for IMAX."""
    chat = Chat(k)
    chat.say("IMAX周二多少钱", "ticket_price", 0.95, [("hall_type", "IMAX"), ("date", "周二")])
    chat.say("停车场限高多少", "parking", 0.99)
    assert "原路退回" in chat.say("那我问一下退款是退到哪里", "refund_policy", 0.51)


def test_films_for_children_asked_without_a_title(k):
    chat = Chat(k)
    reply = chat.say("给孩子看的，你们有啥", None, 0.35)
    assert "熊猫总动员" in reply and "深海回声" in reply and "雾都疑案" not in reply
    assert "熊猫总动员" not in Chat(k).say("小孩有什么优惠", "ticket_price", 0.95)


def test_a_childs_height_with_a_ticket_question_is_the_child_ticket(k):
    reply = Chat(k).say("那让他看深海回声的普通2D吧，1米以下要买票吗", "ticket_price", 0.9,
                        [("film", "深海回声"), ("hall_type", "普通2D")])
    assert "免票" in reply and "40元" not in reply


def test_a_ticket_types_discount_is_not_the_member_discounts(k):
    assert "8折" in Chat(k).say("学生证买票打几折", "ticket_price", 0.97)
    assert "9.5折" not in Chat(k).say("学生证买票打几折", "ticket_price", 0.97)
    assert "金卡购票9折" in Chat(k).say("金卡买票打几折", "member_benefits", 0.9)


def test_hall_seats_by_number_or_the_hall_last_named(k):
    chat = Chat(k)
    assert "150" in chat.say("5号厅多少个座位", "hall_types")
    chat = Chat(k)
    assert "情侣座" in chat.say("你们有情侣座吗", "hall_types")
    assert "150" in chat.say("那个厅总共多少座", None, 0.0)  # the hall the couple seats' answer named


def test_item_count_in_a_hall_after_the_item_and_a_childs_ticket_rule(k):
    chat = Chat(k)
    chat.say("我坐轮椅，哪些厅有轮椅位", "facilities")
    assert "1号厅4个" in chat.say("1号厅有几个", None, 0.0)
    chat = Chat(k)
    chat.say("孩子一米二，带他看熊猫总动员2D版要买票吗", "ticket_price")
    assert "不占座" in chat.say("免票的话孩子有单独座位吗", "viewing_rules", 0.6)
    assert "限带1名" in chat.say("我一个人带两个娃呢", None, 0.0)


def test_yes_only_for_whom_the_rule_names_and_a_films_showings_asked_if_any(k):
    assert Chat(k).say("黑钻卡能用VIP休息区吗", "vip_service").startswith("可以的")
    assert not Chat(k).say("金卡能用VIP休息区吗", "vip_service").startswith("可以的")
    assert Chat(k).say("破晓行动在4DX厅放吗", "showtimes").startswith("有的")


def test_points_catalogue_and_parking_hours_said_loosely(k):
    assert "爆米花" in Chat(k).say("我想查一下积分能换什么", "member_points")
    assert "4小时" in Chat(k).say("我看IMAX停了不到5个小时要交多少", "parking")
