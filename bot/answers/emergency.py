"""Is this message an emergency? Cue words say something is happening now; a question about a rule or
about the film is not one. Pure functions shared by the NLU guard and the dialogue's emergency mode."""
from __future__ import annotations

import re

EMERGENCY = "report_emergency"
CONFIDENCE = 0.97
QUESTION = re.compile(r"(能不能|可不可以|可以|能否|能|允许|行不行|适合|会不会|要不要|是否|有没有限制|不宜).*([吗么嘛]|[?？])|"
                      r"[吗么][?？]?$|呢[?？]?$|(能|可以|行|会|适合|要).{0,6}不[?？]?$|"  # 「能坐不」「会有危险不」
                      r"会不会|能不能|可不可以|行不行|适不适合|要不要紧|有没有危险|危不危险")
# 「他能去吗」「4DX会不会有危险」: asking whether someone may watch or sit in, with nothing happening yet
RULE_ASK = re.compile(r"(能|可以|适合|能不能|可不可以|会不会|行不行|适不适合).{0,4}(去|看|坐|进|玩|入场|观看|体验|买票)|"
                      r"有没有危险|危险吗|会不会有危险|有危险吗|危不危险|要紧吗|要不要紧|受得了吗|扛得住吗")  # 「孩子五岁呢」 follows up a rule question
URGENT = re.compile(r"快|马上|赶紧|赶快|救命|现在|正在|刚才|刚刚|突然|一直|怎么办|了$|了[!！。，,？?]|啊[!！]|[!！]{2,}|"
                    r"怎么还没|还没来|还没到|人呢|保安呢|来人")
# 「人已经送走了」「没事了」: the patron says the emergency is over, and the conversation may move on
OVER = re.compile(r"没事了|没什么事了|送走了|送医院了|送去医院|被接走|救护车(已经)?(来了|到了)|处理好了|已经好了|人好了|"
                  r"醒过来了|已经醒了|火灭了|找到了|找着了|已经解决|警察来了|工作人员(已经)?(来了|到了)")


def is_over(text: str) -> bool:
    return bool(OVER.search(text or ""))
FOLLOW_UP = re.compile(r"^.{0,10}呢[?？。]*$")
ABOUT_FILM = re.compile(r"电影里|片子里|片里|剧情|那段|镜头|特效|预告|演的|主角")


HYPERBOLE = re.compile(r"(?:闷|热|冷|吵|气|笑|吓|挤|累|烦|难受|看|晃|转|震)得.{0,4}")


def _cue(text: str, cues) -> bool:
    # 「闷得喘不过气」「笑得喘不过气」 are ways of speaking, not a patron in danger
    plain = HYPERBOLE.sub("", text)
    return any(c and c.upper() in plain for c in cues)


# Someone named and what is happening to them, a few characters apart (「旁边大爷捂着胸口叫不应」「我妈突然吐了」):
# phrasings the cue list does not have still say who and what.
PERSON = r"(?:人|他|她|大爷|大妈|阿姨|叔叔|老人|老太太|老爷子|小孩|孩子|儿子|女儿|宝宝|娃|朋友|同伴|同事|老公|老婆|" \
         r"女朋友|男朋友|妈|爸|爷爷|奶奶|外婆|外公|姥姥|姥爷|孕妇|小伙子|姑娘|男的|女的|观众|我)"
SYMPTOM = r"(?:晕|昏|倒下|倒地|倒了|吐了|吐血|抽搐|抽筋|喘不|喘气|发紫|发白|发青|冷汗|流血|出血|满脸是血|摔|不醒|不动了|没气|" \
          r"没反应|翻白眼|发烧|高烧|烧到|噎|呛到|卡住了|肿了|发麻|麻了|瘫|不会动|叫不|站不起|起不来|说不出话|心口疼|胸口|" \
          r"透不过气|上不来气|窒息|昏迷|休克|痉挛|发作)"
PERSON_SYMPTOM = re.compile(PERSON + r".{0,10}?" + SYMPTOM)
# 「上周我在你们那摔了一跤，到现在没人管」「上次有人晕倒你们处理得很好」: an incident told afterwards is a complaint
# or feedback, not an emergency — unless the message says something is happening now
PAST = re.compile(r"上次|上周|上星期|上个月|上回|之前|以前|去年|前几天|前阵子|那次|那天|昨天|昨晚|前天|当时|上礼拜")
NOW = re.compile(r"快来|快点|快派|马上|赶紧|赶快|救命|正在|还在|现在.{0,6}(怎么办|还|又|突然|晕|疼|痛|吐|流|不行|喘)|"
                 r"此刻|刚刚|刚才|突然|[!！]{2,}|来人")

RUNNER_UP = 0.3  # an emergency this likely, said urgently, is treated as one: a false alarm costs less


def decide(text: str, intent: str, cues, rule_words, emergency_confidence: float = 0.0) -> bool:
    """Whether the message is an emergency (True), given the classifier's intent (and how likely it
    found an emergency, when it chose something else)."""
    text = (text or "").upper()
    rule_question = bool(QUESTION.search(text)) and not URGENT.search(text)
    if ABOUT_FILM.search(text) and not URGENT.search(text):
        return False
    if PAST.search(text) and not NOW.search(text):
        return False  # told afterwards: the complaint or the thanks, not an alarm
    if rule_question and RULE_ASK.search(text):
        return False  # whether someone may watch or sit in: a rule question, whatever the classifier leaned to
    if _cue(text, cues) or PERSON_SYMPTOM.search(HYPERBOLE.sub("", text)):
        return not rule_question
    if FOLLOW_UP.search(text):
        return False  # 「孩子五岁呢」「那老人呢」: a follow-up question, and no one in danger named
    if intent == EMERGENCY:
        return not (rule_question and _cue(text, rule_words))
    return emergency_confidence >= RUNNER_UP and bool(URGENT.search(HYPERBOLE.sub("", text))) and not rule_question
