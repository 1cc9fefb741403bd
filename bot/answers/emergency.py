"""Is this message an emergency? Cue words say something is happening now; a question about a rule or
about the film is not one. Pure functions shared by the NLU guard and the dialogue's emergency mode."""
from __future__ import annotations

import re

EMERGENCY = "report_emergency"
CONFIDENCE = 0.97
QUESTION = re.compile(r"(能不能|可不可以|可以|能否|能|允许|行不行|适合|会不会|要不要|是否|有没有限制|不宜).*([吗么嘛]|[?？])|"
                      r"[吗么][?？]?$|呢[?？]?$")  # 「孩子五岁呢」 follows up a rule question
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


RUNNER_UP = 0.3  # an emergency this likely, said urgently, is treated as one: a false alarm costs less


def decide(text: str, intent: str, cues, rule_words, emergency_confidence: float = 0.0) -> bool:
    """Whether the message is an emergency (True), given the classifier's intent (and how likely it
    found an emergency, when it chose something else)."""
    text = (text or "").upper()
    rule_question = bool(QUESTION.search(text)) and not URGENT.search(text)
    if ABOUT_FILM.search(text) and not URGENT.search(text):
        return False
    if _cue(text, cues):
        return not rule_question
    if FOLLOW_UP.search(text):
        return False  # 「孩子五岁呢」「那老人呢」: a follow-up question, and no one in danger named
    if intent == EMERGENCY:
        return not (rule_question and _cue(text, rule_words))
    return emergency_confidence >= RUNNER_UP and bool(URGENT.search(HYPERBOLE.sub("", text))) and not rule_question
