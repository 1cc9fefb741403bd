"""Anger detection on a table of Chinese patron messages, with the store's word lists."""
import pytest

from bot.anger import assess
from bot.kb import loader


@pytest.fixture(scope="module")
def complaints():
    parsed = loader.validate(loader.read_dir("knowledge"))
    return parsed.docs["complaints.yml"].dict()


@pytest.mark.parametrize("text,intent", [
    ("什么破影院，画面一直模糊！！！", "complain"),
    ("你们再不处理我就打12315", "complain"),
    ("我要发微博曝光你们", None),
    ("空调冷死了没人管？？？", "complain"),
    ("服务员态度太差了，气死我了", "complain"),
    ("垃圾服务", None),
    ("退钱！！", None),
    ("搞什么啊 电影放一半黑屏了", "complain"),
    ("你们是骗子吧", None),
    ("我要找律师起诉你们", None),
])
def test_angry(text, intent, complaints):
    assert assess(text, complaints, intent).angry


@pytest.mark.parametrize("text,intent", [
    ("IMAX周六多少钱", "ask_ticket_price"),
    ("停车怎么收费", "ask_parking"),
    ("建议多排点早场", "give_feedback"),
    ("你们的爆米花很好吃", "give_feedback"),
    ("明天晚上有星际归途吗", "ask_showtimes"),
    ("我手机落在3号厅了", "report_lost_item"),
    ("谢谢！", "thank"),
    ("空调有点冷，能调高一点吗", "complain"),
    ("", None),
])
def test_calm(text, intent, complaints):
    assert not assess(text, complaints, intent).angry


@pytest.mark.parametrize("text", ["停车收了我60块！不是说看电影免费吗", "你们不是说金卡停车免5小时吗，为什么收我钱",
                                  "说退款1到7天，现在都10天了！"])
def test_reproaches_are_mild_anger(text, complaints):
    mood = assess(text, complaints, "ask_parking")
    assert mood.angry and mood.mild  # empathy, without a step towards a handoff


@pytest.mark.parametrize("text", ["为什么IMAX比普通厅贵", "这部电影有意思吗", "到底几点开场"])
def test_one_reproach_is_no_anger(text, complaints):
    assert not assess(text, complaints, "ask_ticket_price").angry


def test_threat_flag(complaints):
    mood = assess("我要去消协投诉", complaints, "complain")
    assert mood.threat and mood.angry
