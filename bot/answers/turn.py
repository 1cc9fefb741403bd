"""One informational turn: decide what the patron is asking, given the intent and the context, and answer it.

Order of decisions:
1. A specific question (facet) of the intent's topic or of the current topic, when the words match one
   well enough; a facet of another topic only when it matches very well.
2. An elliptical follow-up (「那周二呢」「学生呢」「IMAX厅也是这样吗」) re-answers the current topic (and facet)
   with the new value, unless the classifier is sure of another topic.
3. Otherwise the intent's topic answers with the values in play (a parameterised answer, e.g. the price for
   this hall and day, or the topic's summary).
When nothing informational fits, ``handled`` is False and the caller does what the intent asks.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from bot.answers import facets, templates
from bot.answers.ask import Ask, entity_values, is_question, now
from bot.answers.resolvers import resolve_date
from bot.answers.correction import corrected, entities_in
from bot.answers.context import FOLLOW_KEYS, OTHER_HALLS, REFERS, DialogueContext, is_elliptical
from bot.answers.replies import Replies, phrase
from bot.answers.topics import (LONGEST, RUNTIME_COMPARED, SHORTEST, about_complaint, films_in, TOPICS, points_earned, points_gap, points_said, elderly_by_age, exchange_item_said, film_halls, kids_films_asked, films_list, genre_asked, height_said,
                                 hours_parked, hall_types_named, minutes_before_show, minutes_until_clock, ticket_price_in,
                                 WHICH_BIGGER, WHICH_DEARER, hall_types_with)
from bot.kb import rules
from bot.kb.store import Knowledge

FACET_MIN = 0.45          # a facet of the intent's or the current topic
FACET_MIN_PARAMS = 0.62   # … when the topic's own answer has the values it needs (hall, day, points…)
FACET_MIN_OTHER = 0.80    # a facet of an unrelated topic
FACET_MIN_ELLIPTICAL = 0.70  # … in a short follow-up, which has few words to go on
FACET_MIN_OTHER_ELLIPTICAL = 0.95  # an unrelated topic's facet in a short follow-up (「在哪换」 after points)
OPEN_MIN = 0.55           # a side question inside a form, matched against any topic
SURE_OTHER = 0.60         # a classifier this sure of another topic outweighs the current topic's facets
INTENT_BONUS = 0.10       # × the intent's confidence, for facets of the intent's topic
CONTEXT_BONUS = 0.08      # for facets of the current topic
NAMED_BONUS = 0.10        # for a facility or rule named in full (卖品部, 母婴室, 3D眼镜)
SURE = 0.90               # an intent this confident overrides an elliptical follow-up
# The question each topic's own answer computes from the values (a price, free hours, an exchange list):
# when it is asked with those values, the computed answer wins over a look-alike specific question.
COMPUTED = {"ticket_price": re.compile(r"多少|几块|几折|价格|票价|怎么卖|贵不贵|便宜|打折|优惠|折扣|最便宜"),
            "parking": re.compile(r"免费?.{0,4}(多久|几个?小时|几个钟|多长)|停多久|能停几|交多少|收多少|多少钱|要付|付多少|"
                                  r"要不要钱|收不收费|收不收钱|要钱吗|收费吗|免费吗|免不免费|怎么收费|怎么算钱"),
            "hall_types": re.compile(r"几个座|多少座|多少个座|座位|几号厅|多少人|多大"),
            "member_points": re.compile(r"能换|换什么|换啥|可以换|兑换什么|要多少积分|多少分|几分"),
            "refund_policy": re.compile(r"能退|可以退|还能|能不能退|收多少|扣多少|退了|退掉|想退|要退|帮我退|退票|手续费|退得"),
            "member_benefits": re.compile(r"权益|好处|特权|待遇|有什么(用|优惠|福利)?[吗呢?？]*$|有哪些")}
# Words that make a topic the question's whatever the classifier leaned to: 「观影券兑的票能退不」
TOPIC_WORDS = {"refund_policy": re.compile(r"能退|退不|退吗|可以退|能不能退|退票|退款|改签")}
SURE_ELSEWHERE = 0.95
CHILD_FACET = "price_child"
CHILD_HEIGHT = re.compile(r"\d(\.\d+)?米|[一1]米[一二三四五六七八九\d]?|\d{2,3}(公分|厘米|cm|CM)")
TICKET_NEEDED = re.compile(r"要买票|买票吗|要不要买票|用买票|免票|要票吗|收费吗|要钱吗|收不收费|占座|要不要票")
# a child's ticket asked: free (and seatless) by height, how many per adult
CHILD_WORDS = re.compile(r"小孩|孩子|儿童|娃|宝宝|小朋友|细路|儿子|女儿")
CHILD_TICKET = re.compile(r"免票|占座|单独(的)?(座位|位子)|有座位|有没有座|自己的(座|位)|带(几|两|2|二|三|3|多少)个")
PRONOUN_CHILD = re.compile(r"[他她]|小的")
CHILD_FACETS = ("children", "price_child", "rules_4dx_health")
# 「那我问一下…」「另外一个问题…」: a new question announced, not a follow-up of the last one
NEW_QUESTION = re.compile(r"问一下|问下|另外问|另一个问题|另外一个问题|换个问题|再问个|还有个问题|想问")
SAME_AGAIN_OVER = 0.9  # a short "the same again?" keeps the current question unless another one matches this well
SAME_QUESTION = re.compile(r"((也|还)?(有|是|能|可以|行|算|一样)(吗|么|嘛|没有|不)|(也|都|还)(是)?(一样|这样|这么|如此)?(的|吗|么|嘛|不)*|"
                           r"有?几个|有?多少个|有没有份|有份吗?|有没有得|"
                           r"(也|都)(不行|不可以|不能)[吗么嘛啊]?)[?？]*$|"
                           # 「在几楼」 after the chargers: where that thing is, asked of the same question
                           r"^(那|那个|它|这个)?(在|是在)?(几楼|几层|哪一?层|哪|哪里|哪儿|哪边|什么位置|什么地方)[呢啊呀]?[?？]*$")
FACET_BONUS = 0.06
VALUE_BONUS = 0.15  # for the current topic's facet about the value in play (the ticket type said before)  # for the current facet itself: 「一天能买几张」 after the member-day rule
# 「老人票和早场优惠能一起用吗」: about combining discounts, not a price
STACKING_FACET = "price_stacking"
# … said outright (「再打几折」「还能再改吗」 are no questions about combining)
COMBINING = r"叠加|一起用|一齐用|同时用|一起享受|同时享受|一起打|一起算|同时使用|一起优惠|同时优惠|和.{1,8}一起"
STACKING_STRICT = re.compile(COMBINING + r"|一齐打|跟.{1,8}一起|能.{0,4}一起")
# … or hinted (「还能再打折吗」), which a combining question's wording also leans to
STACKING = re.compile(COMBINING + r"|一齐|再打|还能再")
STACKING_BONUS = 0.25
PARAMETERS = {"ticket_price": ("hall_type", "ticket_type"), "parking": ("hall_type",),
              "showtimes": ("film", "date", "time", "hall_type")}
# 「有4DX吗」「那破晓行动有没有杜比的」: whether a film plays in a hall type is the schedule's answer
HALL_AVAILABLE = re.compile(r"有没有|有.{0,8}[吗嘛么]|有.{1,8}没有?[?？]*$|场次?|能看|可以看|放不放|能不能看|放吗|放映吗|上映吗|有得看|"
                            r"(能|可以)在.{0,8}(看|放)")  # 「这部能在4DX厅看吗」
HALL_DETAIL = re.compile(r"几个|多少|几号|座|区别|什么样|怎么样|介绍|多大")
NOT_AVAILABILITY = re.compile(r"要求|限制|身高|年龄|孕妇|老人|小孩|孩子|适合|规定|带|吃|喝|停车|价|钱|优惠|退|改签")


# 「VIP厅能看哪些电影」「今天放什么片」: the schedule answers, whatever topic the words lean to
FILMS_ASKED = re.compile(r"(哪些|什么|哪几部|哪部|几部|啥)(电影|片子?|影片)|放(什么|啥|哪些)|有什么(好看的|可看)|"
                         r"(能|可以)看(什么|啥|哪些|哪几部|哪部)|推荐|有什么好看|什么好看")  # 「那4DX能看什么」「有什么推荐的」
# 「换张电影票要多少分」「积分能换啥」: the points catalogue answers
POINTS_ASKED = re.compile(r"(多少|几)\s*(积)?分|积分.{0,6}(换|兑)|(换|兑).{0,8}(多少|几)\s*(积)?分")
# 「只有500分的话」「3k分呢」: a number of points said outright is about points, whatever came before
POINTS_NAMED = re.compile(r"(\d+(\.\d+)?\s*[kKwW千万]?|[一二两三四五六七八九十百千万]+)\s*(积)?分(?!钟|之|期|店|享|手|开|别)")
FREE_HOURS = re.compile(r"免费.{0,4}(多久|几个?小时|几个钟|多长时间|停多久)|能免费停|可以免费停|"
                        r"(能|可以)(免费)?(停|免)\s*[\d一二两三四五六七八九十]+\s*个?(小时|钟)")  # 「用她的卡能停5小时吗」
SEATS_ASKED = re.compile(r"(多少|几多|几个|几)个?(座位?|位子?|位置|个位)|座位数|座位有多少|坐得下(多少|几)|能坐(多少|几个?)人|"
                         r"可以坐(多少|几个?)人|(最多|一共|总共)?坐(多少|几多|几个)人|容纳(多少|几)|装得下(多少|几)|坐得满")
QUOTED_TITLE = re.compile(r"《([^》]{1,20})》")
ITEM_TOPICS = ("vip_service", "hall_types")
CATALOGUE_ASKED = re.compile(r"积分.{0,4}(能|可以)?(换|兑换|兑)(些)?(什么|啥|哪些|甚么)|积分商城(有|里)(什么|啥)")
THAT_HALL = re.compile(r"那个厅|这个厅|该厅|那厅|这个影厅|那个影厅|同一个厅")
ITEM_AGAIN = re.compile(r"(那|那个|它|这个)?(在|是在)?(哪个位置|什么位置|哪个地方|什么地方|哪里|哪儿|哪|几楼|几层)[呢啊呀]?[?？]*|"
                        r"(那)?(里面|里边|里头)?(有什么|有啥|提供什么|都有什么|有些什么)[呢啊呀]?[?？]*")
# 「1号厅有几个」 after the wheelchair seats: how many of that item in the hall named — the item's answer again
HALL_COUNT_AGAIN = re.compile(r"(那)?(\d+|[一二三四五六七八])号厅(有|是|呢)?(几个|多少个?|几多个|几组)?[呢啊呀]?[?？]*")
PLACE_ASKED = re.compile(r"哪|几楼|多少钱|收费|免费|要钱")
LEVEL_ASKED = re.compile(r"升|级|银卡|金卡|黑钻|普卡|有效期|用多久")  # 「4800分，什么时候能升」 asks about levels
# 「积分能换啥」 asks for the catalogue itself, which the topic's own answer lists
CATALOGUE_ASKED = re.compile(r"(能|可以)?(换|兑换?)(什么|啥|哪些|咩)")


# 「金卡停车呢」 after a discount: the level's parking, not its benefits
OTHER_TOPIC_WORDS = re.compile(r"停车|泊车|车位|积分|生日|退|改签|厅|场")
RELEASE_ASKED = re.compile(r"什么时候|啥时候|几时|哪天|几号|上映|有场|排片|场次|上吗|上啊|上没|会上|会不会上|能看|放吗|放不放|有没有得看|"
                           r"怎么会没|真的?没有?|没有吗|确定没|为什么没|怎么没|不放了?吗")  # 「真没有吗，我孩子特别想看」
# 「极地救援什么时候上映」「时间旅人适合小孩子看吗」: a title the store does not have, said before the question
TITLE_BEFORE = re.compile(r"^(?:(?:那|那么|请问|问下|想问下?|我想看|我想问下?|有没有|能看到|看得到|你们这有|这里有|有|"
                          r"给我查一下|帮我查一下|帮我查下?|查一下|查下|查查|帮忙查下?)\s*)*([\u4e00-\u9fff·：:]{2,10}?\d?)(?:这部|这个片|的)?"
                          r"(?:还在|在|还|有)?(?:什么时候|哪个厅|什么厅|哪种厅|哪些厅|几号厅|啥时候|哪天|几号|适合|多长|多久|讲的?|好看|几点|有场|有没有|上映|是什么|怎么样|"
                          r"今天|明天|后天|周[一二三四五六日天]|场次|有吗|还有|放吗|放映|上吗|能看|评分|看|IMAX|4DX|4D|杜比|巨幕|VIP|3D|2D|排片|票|吗|"
                          r"多少钱|几多钱|几钱)")
WHEN_WORDS = re.compile(r"(下下?|这|本)?(周|星期|礼拜)[一二三四五六日天末]|[今明后]天|大后天|今晚|明晚|[上下中]午|晚上|早上|现在|目前|最近|这几天|近期|"
                        r"\d{1,2}月\d{1,2}[日号]?|\d{1,2}[点:：]\d{0,2}|[一二三四五六七八九十]+点半?")
NOT_TITLES = re.compile(r"它|这部|那部|这个|那个|电影|影片|片子|孩子|小孩|场次|排片|今天|明天|后天|周|票|厅|会员|停车|"
                        r"积分|退|改签|优惠|你们|影城|影院|几点|什么|现在|上映|哪部|最|哪些|还|新片|好看|请问|一下|"
                        r"几岁|以上|以下|多大|建议|建义|喜剧|动画|科幻|悬疑|动作|爱情|恐怖|类型|轻松|换个|换部|"
                        r"想问|问下|问一下|咨询|了解|国语|粤语|英语|原声|配音|字幕|版本|版的|^是|没有|啥|推荐|能看到|看到|"
                        r"营业|开门|关门|下班|上班|改到|换到|改成|看完|一米|岁|到$|去$|了$|在$|^我想|^我要|^我们|^想$|便宜|贵|划算|打折|折扣|几折|认真|找|管|处理|解决|回复|人理|"
                        r"片长|时长|多长|多久|开场|离开|散场|入场|检票|补偿|赔|提示|提醒|镜头|重映|^(要是|另外|如果|假如|还有|然后|就是|其实|不过|那么)$")


# 「你们这有银河护卫队吗」「明天有没有放夜行者」「周末能看到山海经吗」「有无名之地的票吗」: a title after the asking words
TITLE_AFTER = re.compile(r"(?:有没有(?:放|上映|上)?|有冇|你们这有|这里有|这边有|能看到|看得到|放不放|在放|有)\s*"
                         r"《?([\u4e00-\u9fff·：:]{2,10}?\d?)》?(?:的票|的场|这部|这个电影|吗|么|嘛|呢|没|不|[?？。!！\s]|$)")
# words of the store's other sections are no film title (「有没有吃的」「有轮椅位吗」)
OTHER_WORDS = re.compile(r"吃的|喝的|热水|开水|饮用水|厕所|卫生间|洗手间|充电|座位|空位|位子|轮椅|母婴|寄存|休息区|折扣|活动|"
                         r"套餐|爆米花|可乐|眼镜|早场|夜场|首映|零食|饮料|人工|客服|发票|停车|车位|优惠|团购|团体|包场|券|"
                         r"会员|积分|学生|儿童|老人|票价|价格|WiFi|wifi|网络|地铁|公交|电梯|吸烟|医务|药|空调|毯子|毛毯|"
                         r"增高垫|靠垫|情侣座|插座|水|咖啡|奶茶|热狗|薯条|冰淇淋|小吃|饮品|卖品|周边|海报|手办|玩偶|月卡|年卡|次卡|"
                         r"储值|充值|办卡|押金|期间|节假|春节|国庆|元旦|中秋|端午|五一|圣诞|情人节|寒假|暑假")


def _store_word(k: Knowledge, title: str) -> bool:
    """Whether a title-like phrase is one of the store's other words (a facility, a rule, a hall type)."""
    if OTHER_WORDS.search(title) or k.find_hall_type(title):
        return True
    for section, key in (("facilities", "facilities"), ("viewing_rules", "rules")):
        for item in k.section(section).get(key, []) if section in k.sections else []:
            # most of the phrase (「轮椅位」「宠物狗」); a title around a short word is a title (「猫咪侦探社」)
            # (a two-character alias only in a phrase of three: 密码 is no word of 「山海密码」)
            if any(a and len(a) >= 2 and a in title and len(a) >= len(title) - (2 if len(a) >= 3 else 1)
                   for a in (item.get("name"), *item.get("aliases", []))):
                return True
    return False


def unknown_title(k: Knowledge, text: str) -> Optional[str]:
    """A title-like phrase of a film question that is no film of the store (None otherwise)."""
    plain = WHEN_WORDS.sub("", text or "").strip(" ，,。")
    m = TITLE_BEFORE.search(plain)
    if m is not None and _store_word(k, m.group(1)):
        return None
    if m is None or NOT_TITLES.search(m.group(1)):
        m = TITLE_AFTER.search(plain)
        if m is not None and _store_word(k, m.group(1)):
            m = None
    if not m:
        return None
    title = m.group(1).strip("·：:")
    if len(title) < 2 or NOT_TITLES.search(title) or k.film_named(title) or k.find_hall_type(title) \
            or k.film_misspelt(title):
        return None
    known = k.find_film(title)
    if known is not None and known.title in title:
        return None  # 「追光少年是喜剧」: the store's film, with words around it
    if known is not None and not any(len(n) >= len(title) - 1 for n in (known.title, *known.aliases) if n in title):
        return title  # 「星际穿越」: a longer title around a short alias (星际) is another film
    return None if known is not None else title


# the words around a title in a question about a film, when nothing else says one is meant
FILM_AFTER = r".{0,3}(什么时候|啥时候|哪天|上映|有场|场次|排片|评分|几点|还在|在放|放吗|上了|的票|好看吗|有没有|在哪个厅|哪个厅放|" \
             r"(IMAX|4DX|4D|杜比|巨幕|VIP|3D|2D)(的|版)?(有吗|有没有|有场|场次|吗|嘛)|多少钱一张|一张多少|票价)"
FILM_BEFORE = r"(有没有(放|上映)?|你们这有|这里有|能看到|看得到|放不放|在放|想看|要看)\s*《?"


def asked_as_film(text: str, title: str) -> bool:
    t = re.escape(title)
    return bool(re.search(t + FILM_AFTER, text or "") or re.search(FILM_BEFORE + t, text or ""))
# 「想看寄生虫」: a title alone after 想看, which the store does not have
TITLE_ALONE = re.compile(r"^(?:我|我们)?(?:想|要|准备|打算)?(?:去)?看\s*([\u4e00-\u9fff·：:]{2,10}\d?)[吗呢啊吧]?[?？。!！]*$")
# what may stand next to a film's alias without making it another title (「看熊猫」「那部熊猫呢」)
NEXT_TO_TITLE = set("看放的有想那这部是要和跟还呢吗么啊吧了在不与及或个场张票")
# the question's words after a title (「熊猫好看吗」「钢铁几点」): no part of it
AFTER_TITLE = set("好多几什怎讲适能可会哪今明后周星上下晚早中排片电影剧主演类评导时场版厅价钱长谁一二三四五六七八九十")


def title_alone(k: Knowledge, text: str) -> Optional[str]:
    m = TITLE_ALONE.match((text or "").strip())
    if not m or NOT_TITLES.search(m.group(1)) or _store_word(k, m.group(1)) or m.group(1)[0] in "完了过着见到" \
            or k.find_film(m.group(1)) or k.find_hall_type(m.group(1)) \
            or k.film_misspelt(m.group(1)):
        return None
    return m.group(1)


# 「我们公司六十人想包场看流浪地球3」: the film a booking is for, named after 看 at the end of a clause
FILM_TO_SEE = re.compile(r"(?:想|要|准备|打算|一起|包场|包个场)看\s*《?([\u4e00-\u9fff·：:]{2,10}\d?)》?(?=$|[，,。!！?？ ]|的|这部|吗|呢)")


# 「看流浪地球3」 as the answer to which film
BARE_FILM_TO_SEE = re.compile(r"^(?:那|就|那就)?看\s*《?([\u4e00-\u9fff·：:]{2,10}?\d?)》?(?:吧|啊|呀)?[。!！]*$")


def unknown_film_to_see(k: Knowledge, text: str) -> Optional[str]:
    """The title a patron wants to see (「…想包场看流浪地球3」) when the store has no such film."""
    m = QUOTED_TITLE.search(text or "") or FILM_TO_SEE.search((text or "").strip()) \
        or BARE_FILM_TO_SEE.match((text or "").strip())
    if not m:
        return None
    title = m.group(1)
    if m.re is BARE_FILM_TO_SEE and (len(title) < 4 or title[0] in "完了过着见到情心下一"):
        return None  # 「看完再说」「看情况吧」: no title
    if NOT_TITLES.search(title) or _store_word(k, title) or k.find_film(title) or k.find_hall_type(title) \
            or k.film_misspelt(title) or title in ("电影", "片子"):
        return None
    return title


# 「那龙猫呢」: another name where a film was talked about; 「有Dune 3吗」: a title in Latin letters
OTHER_NAME = re.compile(r"^(?:那|那么|那个)\s*《?([\u4e00-\u9fff·：:]{2,8}\d?)》?\s*(?:呢|有吗|有没有|有冇)[?？。]*$")
LATIN_TITLE = re.compile(r"^(?:有没有|有冇|有|放不放|你们有|那)\s*《?([A-Za-z][A-Za-z0-9 :'\-]{2,30}?)》?\s*(?:吗|嘛|么|没有|不|呢)?[?？]*$")


def other_title(k: Knowledge, ctx: Any, text: str) -> Optional[str]:
    """A title the store does not have, said alone as a follow-up (see OTHER_NAME, LATIN_TITLE)."""
    t = (text or "").strip()
    m = LATIN_TITLE.match(t)
    if m:
        title = m.group(1).strip()
        if len(title.replace(" ", "")) >= 4 and not title.isupper() and not _store_word(k, title) \
                and not k.find_hall_type(title) and not k.find_film(title):
            return title
        return None
    m = OTHER_NAME.match(t)
    if not m or not (ctx.values.get("film") or ctx.topic in ("showtimes", "film_info")):
        return None
    title = m.group(1)
    if NOT_TITLES.search(title) or WHEN_WORDS.search(title) or _store_word(k, title) or k.find_film(title) \
            or k.find_hall_type(title) or k.film_misspelt(title) or rules.find_ticket_type(k, title) \
            or rules.level_by_text(k, title) or re.search(r"[一二三四五六七八九十两\d]", title):
        return None
    return title


def alias_inside(k: Knowledge, text: str, said: Optional[str]) -> Optional[str]:
    """「放不放功夫熊猫」: a short alias (熊猫) inside a longer title-like run of words that is no title of the
    store — another film."""
    alias = (said or "").strip("《》 ")
    film = k.film_named(alias)
    t = text or ""
    if film is None or film.title in t or len(alias) > 2 or alias not in t or k.film_misspelt(t) is not None:
        return None  # (「熊猫总动圆」: the store's film, misspelt)
    i = t.index(alias)
    start, end = i, i + len(alias)
    while start > 0 and "\u4e00" <= t[start - 1] <= "\u9fff" and t[start - 1] not in NEXT_TO_TITLE:
        start -= 1
    words = 0
    while end < len(t) and words < 2 and "\u4e00" <= t[end] <= "\u9fff" and t[end] not in NEXT_TO_TITLE \
            and t[end] not in AFTER_TITLE:
        end, words = end + 1, words + 1  # 「放不放钢铁侠」: a title that goes on after the alias (钢铁 of 钢铁洪流)
    while end < len(t) and t[end].isdigit():  # a sequel's number (功夫熊猫4); the question's words are no title
        end += 1
    run = t[start:end]
    if len(run) < len(alias) + (1 if words else 2) or NOT_TITLES.search(run) or _store_word(k, run) or k.film_misspelt(run) is not None or any(n in run for n in (film.title, *film.aliases) if len(n) > 2):
        return None
    return run


# Words that decide the specific question whatever the matcher scores (each names a facet of questions.yml)
CHILD_AGE = re.compile(r"(几岁|\d+岁|[一二三四五六七八九十]+岁|多大|孩子|小孩|小朋友|儿童|宝宝).{0,8}(能看|能不能看|可以看|适合|看得了|合适)|"
                       r"(适合|能带).{0,4}(孩子|小孩|小朋友|儿童|宝宝)|建议.{0,4}(几岁|多大|年龄)|(几岁|多大)(以上|以下|才能|才可以)|"
                       r"(\d+|[一二三四五六七八九十]+)岁.{0,16}(能看|能不能看|可以看|能带.{0,4}看|看得了)")  # 「我表弟14岁，能带他一起看…吗」
# what only the 4DX hall limits: height (1米以下), hot drinks, health
FOURDX_LIMIT = re.compile(r"身高|公分|厘米|米高|不到一米|一米以下|热饮|热的|热牛奶|热咖啡|热茶|热奶茶|热水|孕|心脏|血压|颈椎|腰椎|醉|喝了酒")
EARLY_SHOW = re.compile(r"早场|早上的?场|上午的?场|早鸟")
SPECIAL_TICKET = re.compile(r"半价|会员日|特价|兑换券|观影券|兑的票|换的票")
REFUND_ASKED = re.compile(r"退|退款|退票")
FILM_WORDS = re.compile(r"部|片|电影|哪个|哪一个")
EDGE_SHOW = re.compile(r"(最早|最晚|最后)(的)?(一)?(场|部)|(第一|头)场.{0,4}几点")
CHARGING_FEE = re.compile(r"充电(费|桩|的钱)?.{0,8}(免费|收费|要钱|另外|另收|另计|包含|包括|算在|算进|单独|怎么收|多少钱)")


def _decisive_facet(k: Knowledge, ctx: DialogueContext, intent_topic: Optional[str], text: str,
                    fresh: Dict[str, str]) -> Optional[str]:
    """The facet a few unmistakable words name (「我家孩子8岁能看吗」 about a film → its age advice;
    「半价票能退吗」 → the special tickets' rule; 「能跟团体价一起打吗」 → no stacking), else None."""
    t = text or ""
    film = fresh.get("film") or ctx.values.get("film")
    if film and k.film_by_name(film) and CHILD_AGE.search(t) and not re.search(r"4DX|4D|动感|IMAX|票|价|钱|优惠|折", t, re.I) \
            and (ctx.topic in ("film_info", "showtimes") or intent_topic in ("film_info", "showtimes")
                 or fresh.get("film") and re.search(r"\d+岁|[一二三四五六七八九十]+岁", t)):
        return "film_age"
    if re.search(r"4DX|4D(?!X)|动感", t, re.I) and (CHILD_AGE.search(t) or re.search(r"(她|他|孩子|小孩|宝宝|老人|孕妇|我|岁).{0,3}(能|可以|能不能)(坐|看|玩)", t)) \
            and is_question(t) and not re.search(r"票|价|钱|几点|场次", t):
        return "rules_4dx_health"  # 「4DX那种我家5岁的能坐吗」「那4DX她能坐吗」: who may sit in the moving seats
    if re.search(r"4DX|4D(?!X)|动感", t, re.I) and is_question(t) and FOURDX_LIMIT.search(t) and not re.search(r"票|价|钱|几点|场次", t):
        return "rules_4dx_health"  # 「孩子身高95公分能坐4DX吗」「4DX厅能带热牛奶吗」: the hall's own limits
    if EARLY_SHOW.search(t) and is_question(t) and re.search(r"优惠|便宜|打折|减|折扣", t) and not STACKING.search(t):
        return "price_early_show"  # 「VIP厅上午的场有早场优惠吗」: whether the early-show discount applies there
    if SPECIAL_TICKET.search(t) and REFUND_ASKED.search(t) and is_question(t) or \
            SPECIAL_TICKET.search(t) and re.search(r"想退|要退|退掉|能退", t):
        return "refund_special"
    if SPECIAL_TICKET.search(t) and ctx.topic == "refund_policy" and intent_topic in (None, "refund_policy", "ticket_price") \
            and not re.search(r"周几|星期几|哪天|礼拜几|几号|多少钱|几折", t):
        return "refund_special"  # 「那特价票呢，也是一小时前」 while on refunds: the special tickets' rule
    if re.search(r"首映|点映|特别放映|特别场", t) and re.search(r"价|钱|贵|便宜|优惠|打折", t) and not re.search(r"会员日|半价", t):
        return "price_special"  # 「首映场也系呢个价？」: how premieres are priced, not the rule that excludes them
    if re.search(r"会员日", t) and re.search(r"周几|星期几|哪天|礼拜几|哪一天|几号|什么时候", t):
        return "price_member_day"  # 「那会员日是周几来着」, whatever topic came before
    if STACKING_STRICT.search(t) and is_question(t) and intent_topic not in ("refund_policy",):
        return STACKING_FACET
    if re.search(r"还能再|再减|再打折|再便宜|再优惠", t) and is_question(t) and ctx.values.get("ticket_type") \
            and intent_topic in (None, "ticket_price"):
        return STACKING_FACET  # 「那场还能再减10块吗」 after the elderly price: one discount on top of another
    if EDGE_SHOW.search(t) and not film and is_question(t) and not re.search(r"车|停|出场|出去|散场|退|票价|多少钱|卖品|小卖部|爆米花|零食", t):
        return "cinema_hours"  # 「最早的场次一般几点」「最晚一场几点」: the hours, not today's listing
    if re.search(r"设备故障|放映事故|场次取消|停映|影城原因|影院原因", t) and REFUND_ASKED.search(t):
        return "refund_cinema_fault"  # 「看到一半设备故障停映了，我要退票」: the cinema's own fault, any time
    if CHARGING_FEE.search(t):
        return "parking_charging"  # 「充电费也包含在免费停车里吗」: charging is paid apart, whatever 免费 suggests
    return None


@dataclass
class Turn:
    replies: Replies
    context: DialogueContext
    handled: bool
    topic: Optional[str] = None
    facet: Optional[str] = None
    scores: List[Any] = field(default_factory=list)
    decided: bool = False  # a specific question matched, or the topic's computed answer had its values
    also: List[str] = field(default_factory=list)  # other specific questions answered in the same reply


def _has_parameters(k: Knowledge, topic: str, values: Dict[str, str], text: str) -> bool:
    """Whether the topic's own (computed) answer has the values it needs in this turn."""
    if any(values.get(k) for k in PARAMETERS.get(topic, ())):
        return True
    if topic == "ticket_price":
        if rules.find_ticket_type(k, text) or elderly_by_age(k, text):
            return True
    if topic == "hall_types":
        return bool(values.get("hall_type"))
    if topic == "film_info" and (LONGEST.search(text or "") or SHORTEST.search(text or "") or genre_asked(k, text)):
        return True  # 「最长那部是哪个」「有喜剧片吗」: the topic's own answer picks the films
    if topic == "refund_policy" and values.get("minutes"):
        if ticket_price_in(text, loose=True) is not None:
            return True
    if topic == "parking":
        if height_said(text) is not None or rules.level_by_text(k, text) is not None:
            return True
    if topic == "member_points":
        if exchange_item_said(text):
            return True
        return points_said(text) is not None
    if topic == "parking":
        return hours_parked(text) is not None
    if topic == "member_benefits":
        return bool(text) and rules.level_by_text(k, text) is not None
    if topic == "refund_policy":
        if minutes_before_show(text) is not None or minutes_until_clock(text, now()) is not None:
            return True  # 「还有40分钟开场」「是今晚9点的」
        day = resolve_date(values.get("date") or text or "", now().date())
        return day is not None and day > now().date()  # 「明天中午的场」: more than any window away
    return False


def _computed_question(topic: str, text: str) -> bool:
    """Whether the message asks the topic's computed question; 「我看的IMAX，停了5个小时」 states the hours to
    be charged for, which asks the fee without a question word."""
    if topic == "parking" and hours_parked(text) is not None:
        return True
    return topic in COMPUTED and bool(COMPUTED[topic].search(text or ""))


def implied_values(k: Knowledge, topic: str, text: str) -> Dict[str, str]:
    """Values a facet's question implies for the follow-ups (「孩子1米2要买票吗」 → child ticket)."""
    found: Dict[str, str] = {}
    ticket = rules.find_ticket_type(k, text)
    if ticket is None and topic == "ticket_price":
        ticket = elderly_by_age(k, text)
    if ticket and topic == "ticket_price":
        found["ticket_type"] = ticket["name"]
    level = rules.level_by_text(k, text) if topic == "parking" else None
    if level:
        found["level"] = level["name"]  # 「金卡不是免5小时吗」: the hours parked next are a gold member's
    return found


def answer_facet(replies: Replies, k: Knowledge, facet: facets.Facet, ask: Ask) -> bool:
    """Send the facet's answer; False when it needs a film the patron has not named."""
    if not facet.templated:
        replies.utter_message(response="utter_text", text=facet.answer)
        return True
    need = templates.needs(facet.answer)
    film = k.film_by_name(ask.get("film")) if ask.get("film") else (k.find_film(ask.text) if ask.text else None)
    hall_type = k.find_hall_type(ask.get("hall_type")) if ask.get("hall_type") else k.find_hall_type(ask.text)
    if "film" in need and film is None:
        if ask.get("film"):
            replies.utter_message(response="utter_film_not_showing", film=ask.get("film").strip("《》"),
                                  films=films_list(k))
        else:
            replies.utter_message(response="utter_ask_which_film", films=films_list(k))
        return True
    if "hall_type" in need and hall_type is None:
        return False
    film_scope = None
    if film is not None:  # the film with its halls in words, for {film.halls}
        film_scope = {**asdict(film), "halls": film_halls(k, film)}
    replies.utter_message(response="utter_text", text=templates.render(facet.answer, k.sections, film_scope, hall_type))
    return True


def _topic_turn(k: Knowledge, ctx: DialogueContext, topic: str, text: str, fresh: Dict[str, str]) -> Turn:
    """The topic's own answer for this turn, and the context after it."""
    ask = Ask(text, ctx.values_for(topic, fresh, text))
    replies = Replies()
    used = TOPICS[topic](replies, k, ask)
    return Turn(replies, ctx.after(topic, None, {**ask.values, **(used or {})}), True, topic, None, [], True)


def facet_turn(k: Knowledge, ctx: DialogueContext, key: str, topic: Optional[str] = None) -> Optional[Turn]:
    """The answer of the store's specific question ``key`` (「经理在吗」 asked of a person: the duty manager's),
    None when the store has no such question."""
    facet = facets.index_for(k).facet(key, topic)
    return _facet_turn(k, ctx, facet, "", {}) if facet is not None else None


# 「黑钻卡能用VIP休息区吗」 answered by a rule that allows it: yes, first
CAN_ASK = re.compile(r"(能|可以|可不可以|能不能|让不让)(用|使用|去|进|进入|带|享受|享|参加|坐|办)[^，,。]{0,12}([吗嘛么不]|[?？])\W*$")
ALLOWS = re.compile(r"可使用|可以使用|可以|可携带|可享|均可|可用|可免费")
NOT_ALLOWED = re.compile(r"不可|不能|禁止|除外|不允许|不宜|不支持|不参与|无法|不享受|不适用|仅限")


def _yes_first(replies: Replies, text: str) -> None:
    """Say yes before a facet's answer when the patron asked whether they may, and the rule allows it."""
    first = replies.messages[0] if replies.messages else None
    said = str(first.get("text") or "") if first else ""
    m = CAN_ASK.search(text or "")
    if not (said and m and ALLOWS.search(said) and not NOT_ALLOWED.search(said)):
        return
    # only for whom the rule names (「金卡能用VIP休息区吗」 is no yes when the lounge is for 黑钻卡)
    subject = re.sub(r"^(请问|你好|您好|那|那么|我|我们|我的|对了)+", "", (text or "")[:m.start()]).strip("，, ")
    if len(subject) >= 2 and subject in said:
        first["text"] = phrase("utter_yes_allowed") + said


def _hall_named(k: Knowledge, replies: Replies, values: Dict[str, str]) -> Dict[str, str]:
    """The values, with the one hall the answer named (「那个厅总共多少座」 after the couple seats of 5号厅)."""
    named = {h.name for h in k.halls if h.name in " ".join(str(m.get("text") or "") for m in replies.messages)}
    if len(named) == 1 and not values.get("hall"):
        values["hall"] = named.pop()
    return values


def _facet_turn(k: Knowledge, ctx: DialogueContext, facet: facets.Facet, text: str,
                fresh: Dict[str, str]) -> Optional[Turn]:
    """The facet's answer for this turn (None when it needs a film the patron has not named)."""
    replies = Replies()
    ask = Ask(text, ctx.values_for(facet.topic, fresh, text))
    if not answer_facet(replies, k, facet, ask):
        return None
    values = _hall_named(k, replies, dict(ask.values))
    _yes_first(replies, text)
    return Turn(replies, ctx.after(facet.topic, facet.key, values), True, facet.topic, facet.key, [], True)


SECOND_MIN = 0.75  # a second question of the same topic in another clause, matched this well
CLAUSES = re.compile(r"[，,。;；?？!！\s]+|然后|还有|另外")


def _second_question(index: facets.FacetIndex, text: str, first: facets.Facet) -> Optional[facets.Facet]:
    """Another specific question of the same topic asked in another clause of the message, if any."""
    clauses = [c for c in CLAUSES.split(text or "") if len(index.prepare(c)) >= 2]
    if len(clauses) < 2:
        return None
    tops = [(index.match(c) or [None])[0] for c in clauses]
    if not any(m is not None and m.facet is first for m in tops):
        return None  # the first answer was not one clause's own question
    for m in tops:
        if m is not None and m.facet is not first and m.facet.topic == first.topic and m.score >= SECOND_MIN \
                and not m.facet.keywords:
            return m.facet
    return None


def _computed_asked(k: Knowledge, ctx: DialogueContext, topic: str, fresh: Dict[str, str], text: str) -> bool:
    """Whether the topic's own computed answer is asked with its values (「周日IMAX票多少钱」 → the price)."""
    values = ctx.values_for(topic, fresh, text)
    if topic == "ticket_price" and not values.get("hall_type"):
        return False  # 「老人有没有优惠」: the ticket type's rule is the specific question, no price to compute
    return topic in COMPUTED and bool(COMPUTED[topic].search(text or "")) and not STACKING.search(text or "") \
        and _has_parameters(k, topic, values, text)


def answer_turn(k: Knowledge, ctx: DialogueContext, intent_topic: Optional[str], confidence: float, text: str,
                entities: List[Dict[str, Any]], allow_follow_up: bool = True, open_topics: bool = False,
                by_clause: bool = False) -> Turn:
    """Answer an informational turn (see the module doc). ``intent_topic`` is the topic the classifier
    chose (None for inform, fallback and the like); ``allow_follow_up`` False means only a facet or a
    value the patron names can make it informational (greetings, thanks, goodbyes); ``open_topics`` lets a
    question match the facets of any topic as if related (a side question inside a form); ``by_clause`` matches
    a long message's asking clauses on their own too (a voice message nobody understood)."""
    correction = corrected(text) if ctx.topic else None
    if correction is not None:
        # 「不对，我说的是周三」「不是学生，是老人」: the last question again, with the new value only
        entities, text, allow_follow_up = entities_in(entities, correction), correction, True
        named = {e.get("entity") for e in entities}
        ticket_type, hall_type = rules.find_ticket_type(k, correction), k.find_hall_type(correction)
        if ticket_type and "ticket_type" not in named:  # the new value in words the extractor left untagged
            entities.append({"entity": "ticket_type", "value": ticket_type["name"]})
        if hall_type and "hall_type" not in named:
            entities.append({"entity": "hall_type", "value": hall_type.name})
        if len(correction) <= 8:
            intent_topic = None  # a value alone: what the classifier made of it is no new topic
    fresh = entity_values(text, entities)
    if "film" not in fresh or k.film_by_name(fresh["film"]) is None:
        misspelt = k.film_misspelt(text)
        if misspelt is not None:  # 「星际归图今天几点有」: the film meant, not "not showing"
            fresh["film"] = misspelt.title
    hall = k.find_hall(text) or (k.find_hall(ctx.values.get("hall")) if THAT_HALL.search(text or "") else None)
    if SEATS_ASKED.search(text or "") and hall is not None and not re.search(r"轮椅|情侣|无障碍|停车|车位", text or "") \
            and (intent_topic in (None, "hall_types", "facilities", "group_booking") or open_topics or ctx.topic in ("hall_types", "facilities")):
        # 「5号厅多少个座位」「那个厅总共多少座」 after the couple seats of 5号厅: that hall's seats
        replies = Replies()
        replies.utter_message(response="utter_hall_seats", hall=hall.name, hall_type=hall.type_name, seats=hall.seats)
        return Turn(replies, ctx.after("hall_types", None, {"hall": hall.name}), True, "hall_types")
    if ctx.topic == "complaint" and intent_topic in (None, "complaint") and about_complaint(text) \
            and is_question(text):
        # 「多久给我回复」「能补偿点啥吗」 after a complaint: its handling or remedy, whatever the classifier read
        return _topic_turn(k, ctx, "complaint", text, fresh)
    quoted = QUOTED_TITLE.search(text or "")
    if quoted and intent_topic in (None, "cinema_info", "hall_types", "ticket_price", "facilities", "viewing_rules") \
            and k.film_by_name(quoted.group(1)) is None and k.film_misspelt(quoted.group(1)) is None:
        intent_topic = "showtimes"  # 「《银河便利店》上映了吗」: a title in brackets the store does not have
    film_unknown = "film" in fresh and k.film_by_name(fresh["film"]) is None
    if intent_topic in ("film_info", "showtimes", "ticket_price", "cinema_info", "facilities", "hall_types") or film_unknown \
            or intent_topic is None:
        guessed = unknown_title(k, text) or title_alone(k, text) or alias_inside(k, text, fresh.get("film"))
        if guessed and ("film" not in fresh or (fresh["film"].strip("《》") in guessed and len(guessed) > len(fresh["film"]))) \
                and (intent_topic in ("film_info", "showtimes") or film_unknown or title_alone(k, text)
                     or alias_inside(k, text, fresh.get("film"))
                     or intent_topic in (None, "cinema_info", "facilities", "hall_types") and len(guessed) >= 3
                     and asked_as_film(text, guessed)
                     or intent_topic == "ticket_price" and len(guessed) >= 4 and asked_as_film(text, guessed)):
            fresh["film"] = guessed
            film_unknown = True
    other = other_title(k, ctx, text) if not film_unknown and "film" not in fresh else None
    if other:  # 「那龙猫呢」 after a film, 「有Dune 3吗」: a title the store does not have
        fresh["film"], film_unknown = other, True
    if film_unknown and "film" in fresh and ctx.topic != "showtimes" and (
            other or QUOTED_TITLE.search(text or "") or intent_topic in ("showtimes", "film_info") and confidence >= 0.6):
        # 「周六下午山海密码几点有」 after a price: not showing, and what is on — no follow-up of the price
        return _topic_turn(k, ctx, "showtimes", text, fresh)
    if film_unknown and intent_topic in (None, "ticket_price", "hall_types", "cinema_info", "facilities"):
        intent_topic = "showtimes"  # 「飞驰人生3的票多少钱」「红海行动2明天几点」: not showing, and what is on
    if "film" not in fresh and "film" not in ctx.values and ctx.values.get("missing_film") \
            and RELEASE_ASKED.search(text or "") and not k.find_film(text or "") and not FILMS_ASKED.search(text or ""):
        fresh["film"] = ctx.values["missing_film"]  # 「什么时候上啊」 after a film the store does not have
        intent_topic = "showtimes"
    if "film" not in fresh and ctx.topic == "showtimes" and ctx.values.get("missing_film") and fresh \
            and set(fresh) <= {"date", "time"} and is_elliptical(text, fresh, ctx.topic) \
            and not FILMS_ASKED.search(text or "") and intent_topic in (None, "showtimes"):
        fresh["film"] = ctx.values["missing_film"]  # 「后天呢」 after a film the store does not have: still not showing
        intent_topic = "showtimes"
    if FILMS_ASKED.search(text or "") and intent_topic not in (None, "showtimes") and "film" not in fresh:
        intent_topic = "showtimes"
    if FILMS_ASKED.search(text or "") and "film" not in fresh and not REFERS["film"].search(text or ""):
        fresh["film"] = ""  # 「那哪部片有4DX」: which films, so not the film talked about before
    genre = (genre_asked(k, text) or kids_films_asked(k, text)) \
        and intent_topic in (None, "showtimes", "film_info", "hall_types", "viewing_rules")
    if genre:
        intent_topic = "film_info"  # 「那有什么科幻片」: the films of that genre, whatever came before
    if TOPIC_WORDS["refund_policy"].search(text or "") and re.search(r"票|券", text or "") \
            and intent_topic in (None, "member_points", "member_benefits", "ticket_price"):
        # 「积分换的观影券兑的票能退吗」: whether such a ticket can be refunded, not what points buy
        intent_topic = "refund_policy"
    if CATALOGUE_ASKED.search(text or "") and not exchange_item_said(text, k) \
            and intent_topic in (None, "member_points", "member_benefits"):
        return _topic_turn(k, ctx, "member_points", text, fresh)  # 「我想查一下积分能换什么」: the catalogue, not the balance
    if exchange_item_said(text, k) and (POINTS_ASKED.search(text or "") or re.search(r"能升|能换|可以升|可以换|能用|够不够|够吗|够不|换个|换一张|换得了|换得到", text or "")) \
            and intent_topic in (None, "member_points", "member_benefits", "ticket_price", "hall_types"):
        return _topic_turn(k, ctx, "member_points", text, fresh)  # 「升级券要多少分」「升级券能升4DX吗」: the item
    if ctx.topic == "member_points" and exchange_item_said(text, k) and is_elliptical(text, fresh, ctx.topic) \
            and intent_topic in (None, "member_points", "facilities"):
        return _topic_turn(k, ctx, "member_points", text, fresh)  # 「可乐呢」 after the popcorn's points: the cola's
    level = rules.level_by_text(k, text)
    if level and ctx.topic == "member_benefits" and ctx.facet and len((text or "").strip()) <= 8 \
            and not OTHER_TOPIC_WORDS.search(text or "") \
            and (SAME_QUESTION.search((text or "").strip()) or (text or "").strip().rstrip("?？。").endswith("呢")):
        again = facets.index_for(k).facet(ctx.facet, ctx.topic)  # 「普卡有冇」 after the birthday benefit: that again
        turn = _facet_turn(k, ctx, again, text, fresh) if again is not None else None
        if turn is not None:
            return turn
    if level and ctx.topic == "ticket_price" and ctx.values.get("level") and is_elliptical(text, fresh, ctx.topic) \
            and intent_topic in (None, "member_benefits", "ticket_price"):
        return _topic_turn(k, ctx, "ticket_price", text, fresh)  # 「银卡呢」 after the gold price: the silver price
    if level and ctx.topic not in (None, "parking", "member_benefits", "member_points") \
            and not OTHER_TOPIC_WORDS.search(text or "") and re.fullmatch(r"(那|那么)?\s*[\u4e00-\u9fff]{1,4}(会员)?(呢|的呢|怎么样)?[?？。]*", (text or "").strip()) \
            and intent_topic in (None, "member_benefits", "ticket_price"):
        return _topic_turn(k, ctx, "member_benefits", text, fresh)  # 「黑钻呢」 after a discount question: the level
    if OTHER_HALLS.search(text or "") and (fresh.get("film") or ctx.values.get("film")) \
            and not ({"date", "time"} & set(fresh)) and intent_topic in (None, "showtimes", "film_info", "hall_types"):
        halls = facets.index_for(k).facet("film_halls", "film_info")
        turn = _facet_turn(k, ctx, halls, text, fresh) if halls is not None else None
        if turn is not None:
            return turn  # 「他想看破晓行动，那还有什么厅能看」: the halls it is shown in, not one hall's times
    if hall_types_with(k, text) and not hall_types_named(k, text) and "film" not in fresh \
            and intent_topic in (None, "hall_types", "viewing_rules", "facilities", "vip_service", "ticket_price") \
            and not any(m.score >= FACET_MIN_ELLIPTICAL for m in facets.index_for(k).match(text)[:1]):
        return _topic_turn(k, ctx, "hall_types", text, fresh)  # 「那有躺椅的厅吗」: the hall that has it
    compared = hall_types_named(k, text) if WHICH_DEARER.search(text or "") or WHICH_BIGGER.search(text or "") else []
    if len(compared) >= 2 and intent_topic in (None, "hall_types", "ticket_price"):
        return _topic_turn(k, ctx, "hall_types", text, fresh)  # 「IMAX和杜比哪个贵」: the two compared on that
    carried = (ctx.values.get("level"), ctx.values.get("spend")) if ctx.topic == "member_points" else (None, None)
    if points_gap(k, text) or points_earned(k, text, *carried):  # 「积分4800了还差多少能升金卡」「黑钻消费100块积多少分」
        return _topic_turn(k, ctx, "member_points", text, fresh)
    if (POINTS_ASKED.search(text or "") or POINTS_NAMED.search(text or "")) and intent_topic != "refund_policy" \
            and not LEVEL_ASKED.search((text or "").replace("升级券", "")) \
            and intent_topic in (None, "ticket_price", "member_benefits", "facilities"):
        intent_topic = "member_points"  # 「换张电影票要多少分」: points, whatever the word 票 suggested
        if ctx.topic not in ("member_points", "member_benefits") and POINTS_NAMED.search(text or "") \
                and is_elliptical(text, fresh, ctx.topic):
            return _topic_turn(k, ctx, "member_points", text, fresh)  # 「那800分呢」 back from another topic
    if intent_topic in (None, "ticket_price") and ctx.topic == "refund_policy" and ctx.values.get("minutes") \
            and ticket_price_in(text, loose=True) is not None:
        intent_topic = "refund_policy"  # 「票是50块的」 after the verdict for that time: the fee for that ticket
    if ctx.topic == "refund_policy" and intent_topic in (None, "showtimes", "ticket_price", "film_info") \
            and "film" not in fresh and minutes_before_show(text) is not None and not FILMS_ASKED.search(text or ""):
        return _topic_turn(k, ctx, "refund_policy", text, fresh)  # 「离开场还有1个小时」: the verdict for that time
    elliptical = (is_elliptical(text, fresh, ctx.topic) or correction is not None) and ctx.topic is not None \
        and (allow_follow_up or bool(fresh))  # a correction leans on the last question, however long
    if elliptical and intent_topic and intent_topic != ctx.topic and confidence >= SURE_ELSEWHERE \
            and len((text or "").strip()) >= 8 and not fresh:
        elliptical = False  # 「那影城本身营业到几点」 after parking: a whole question of another topic, not a follow-up
    if elliptical and intent_topic and intent_topic != ctx.topic and not fresh and len((text or "").strip()) >= 8 \
            and (NEW_QUESTION.search(text or "") or intent_topic in TOPIC_WORDS and TOPIC_WORDS[intent_topic].search(text or "")):
        elliptical = False  # 「那我问一下退款是退到哪里」 after parking: another topic, announced or named
    said = set(fresh) - {"hall"}
    if elliptical and said and ctx.previous in FOLLOW_KEYS and intent_topic in (None, ctx.previous) \
            and not said <= set(FOLLOW_KEYS.get(ctx.topic or "", ())) and said <= set(FOLLOW_KEYS[ctx.previous]) \
            and ctx.previous in COMPUTED:
        # 「周四早上11点那场呢」 after a hall question that followed a price: values the current topic has no use
        # for, that the topic before it takes — that topic's answer for them
        return _topic_turn(k, ctx, ctx.previous, text, fresh)
    film_known = fresh.get("film") or ctx.values.get("film")
    if fresh.get("hall_type") and film_known and HALL_AVAILABLE.search(text) and not HALL_DETAIL.search(text) \
            and not NOT_AVAILABILITY.search(text) \
            and intent_topic in (None, "showtimes", "film_info", "hall_types", "vip_service"):
        ask = Ask(text, ctx.values_for("showtimes", fresh, text))
        replies = Replies()
        used = TOPICS["showtimes"](replies, k, ask)
        return Turn(replies, ctx.after("showtimes", None, {**ask.values, **(used or {})}), True, "showtimes")
    if genre and "film" not in fresh:  # 「那最近有喜剧片吗」: the films of the genre, no film's facet
        return _topic_turn(k, ctx, "film_info", text, fresh)
    if SEATS_ASKED.search(text or "") and not re.search(r"轮椅|情侣|无障碍|停车|车位", text or "") \
            and (fresh.get("hall_type") or k.find_hall_type(text)) \
            and (intent_topic in (None, "hall_types", "facilities", "group_booking") or fresh.get("hall_type") and open_topics):
        return _topic_turn(k, ctx, "hall_types", text, fresh)  # 「IMAX厅有几多个位」: the hall's seats
    if FREE_HOURS.search(text or "") and (intent_topic == "parking" or intent_topic is None and ctx.topic == "parking"
                                          or ctx.topic == "parking" and confidence < SURE_OTHER):
        return _topic_turn(k, ctx, "parking", text, fresh)  # 「停车能免费多久」: the free hours, computed
    if CHILD_HEIGHT.search(text or "") and TICKET_NEEDED.search(text or "") and (fresh.get("film") or fresh.get("hall_type")) \
            and intent_topic in (None, "ticket_price", "viewing_rules", "film_info", "showtimes"):
        # 「看深海回声的普通2D，1米以下要买票吗」: the child's ticket by height, not the hall's price
        child = facets.index_for(k).facet(CHILD_FACET, "ticket_price")
        turn = _facet_turn(k, ctx, child, text, fresh) if child is not None else None
        kind = next((t for t in k.section("prices")["ticket_types"] if t.get("code") == "child"), None)
        if turn is not None:
            if kind:
                turn.context.values["ticket_type"] = kind["name"]  # 「那IMAX呢」 next: the child's IMAX price
            return turn
    child_asked = CHILD_WORDS.search(text or "") or PRONOUN_CHILD.search(text or "") and ctx.facet in CHILD_FACETS
    if child_asked and (CHILD_TICKET.search(text or "") or TICKET_NEEDED.search(text or "")) \
            and intent_topic in (None, "ticket_price", "viewing_rules", "film_info", "showtimes", "hall_types"):
        # 「免票的话孩子有单独座位吗」「我一个人带两个娃呢」「那普通厅3D版他要买票吗」: the child's ticket rule, not the
        # rule that children need an adult with them
        child = facets.index_for(k).facet(CHILD_FACET, "ticket_price")
        turn = _facet_turn(k, ctx, child, text, fresh) if child is not None else None
        kind = next((t for t in k.section("prices")["ticket_types"] if t.get("code") == "child"), None)
        if turn is not None:
            if kind:
                turn.context.values["ticket_type"] = kind["name"]
            return turn
    index = facets.index_for(k)
    cue = index.facet(_decisive_facet(k, ctx, intent_topic, text, fresh))
    decided = _facet_turn(k, ctx, cue, text, fresh) if cue is not None else None
    if decided is not None:
        return decided
    if len(films_in(k, text)) >= 2 and RUNTIME_COMPARED.search(text or ""):
        return _topic_turn(k, ctx, "film_info", text, fresh)  # 「星际归途和破晓行动哪个长」: both running times
    if (LONGEST.search(text or "") or SHORTEST.search(text or "")) and FILM_WORDS.search(text or "") \
            and intent_topic not in ("refund_policy", "parking"):
        return _topic_turn(k, ctx, "film_info", text, fresh)  # 「最长那部是哪个」: the film, whatever was read
    candidates = index.match(text, clauses=by_clause)
    best: Optional[facets.Match] = None
    best_adj = 0.0
    scored = []
    named_type = rules.find_ticket_type(k, text)
    # 「学生证买票打几折」: a discount asked for a ticket type (student, elderly, child) is that ticket's rule,
    # not the member levels' discounts
    not_members = bool(named_type) and named_type.get("code") != "member" and not rules.level_by_text(k, text)
    for m in candidates[:8]:
        adj = m.score
        if not_members and m.facet.topic == "member_benefits":
            continue
        # the current topic's facets count as related unless the classifier is sure of another topic
        related = open_topics or m.facet.topic == intent_topic or (
            m.facet.topic == ctx.topic and (intent_topic is None or confidence < SURE_OTHER or elliptical)) or (
            m.facet.topic in TOPIC_WORDS and TOPIC_WORDS[m.facet.topic].search(text))
        if m.facet.topic == ctx.topic and m.facet.key == ctx.facet:
            adj += FACET_BONUS
        if "film" in templates.needs(m.facet.answer) and m.facet.topic != intent_topic \
                and not (fresh.get("film") or ctx.values.get("film")):
            continue  # a film question with no film in sight is no reading of this message
        if m.facet.topic == intent_topic:
            adj += INTENT_BONUS * confidence
        if m.facet.keywords and len(m.facet.keywords[0]) >= 3 and m.facet.keywords[0] in text:
            adj += NAMED_BONUS  # 「卖品部几点关」: the counter's hours, not the cinema's, whatever the intent said
        if m.facet.topic == ctx.topic:
            adj += CONTEXT_BONUS
            said = ctx.values.get("ticket_type") if "ticket_type" not in fresh else None
            if said and any(said[:2] in example for example in m.facet.examples):
                adj += VALUE_BONUS  # 「要带什么证件」 after the elderly price: the elderly variant
        topic_values = ctx.values_for(m.facet.topic, fresh, text)
        params = _has_parameters(k, m.facet.topic, topic_values, text)
        # the values make the topic's computed answer likelier only when its question is asked
        # (「积分够金卡了，什么时候升级」 names a level but asks about the upgrade)
        computed_asked = m.facet.topic not in COMPUTED or _computed_question(m.facet.topic, text) or elliptical
        need = FACET_MIN_PARAMS if params and computed_asked else FACET_MIN
        if m.facet.topic == "member_points" and CATALOGUE_ASKED.search(text) and not STACKING.search(text):
            need = max(need, 0.90)  # the catalogue is the topic's own answer
        if STACKING.search(text) and m.facet.key == STACKING_FACET:
            adj += STACKING_BONUS
        if params and m.facet.topic in COMPUTED and _computed_question(m.facet.topic, text) \
                and not STACKING.search(text):
            need = 0.95
        elif m.facet.topic == "ticket_price" and COMPUTED["ticket_price"].search(text) and len(index.prepare(text)) <= 4:
            need = max(need, 0.85)  # 「票价多少」: the price table, not a look-alike specific question
        swapped = set(fresh) - {"hall"}
        if elliptical and ctx.facet is None and ctx.topic in COMPUTED and m.facet.topic == ctx.topic and swapped \
                and swapped <= set(FOLLOW_KEYS.get(ctx.topic, ())):
            # 「学生呢」「那周二呢」 after a computed answer (a price): the same computation with the new value
            need = max(need, 0.95)
        if not related:
            # a short follow-up leans on the current topic: another topic's question must match it outright
            need = max(need, FACET_MIN_OTHER_ELLIPTICAL if elliptical and ctx.topic else FACET_MIN_OTHER)
        elif open_topics and m.facet.topic not in (intent_topic, ctx.topic):
            need = max(need, OPEN_MIN)
        scored.append((m.facet.topic, m.facet.key, round(m.score, 3), round(adj, 3)))
        if adj >= need and adj > best_adj:
            best, best_adj = m, adj
    replies = Replies()
    # 「在哪」「几楼」「收费不」 right after a facility (or rule, or order problem) was answered: that item again
    # (its answer says where and on what terms), not another topic's look-alike
    short = len(text.strip()) <= 5 or (len(text.strip()) <= 8 and bool(PLACE_ASKED.search(text)))  # 「下完单去哪里拿」
    if elliptical and ctx.topic in facets.KEYWORD_TOPICS and ctx.facet and short and (
            best is None or best.facet.topic != ctx.topic) and (intent_topic in (None, ctx.topic) or confidence < SURE):
        again = index.facet(ctx.facet, ctx.topic)
        if again is not None and not again.templated:
            best = facets.Match(again, 0.0)
    # 「在哪」「里面有什么」 after the VIP lounge or the couple seats: that item again (its answer says where it is
    # and what it offers), not the cinema's address
    if elliptical and ctx.facet and ctx.topic in ITEM_TOPICS and ITEM_AGAIN.fullmatch(text.strip()) \
            and (best is None or best.facet.topic != ctx.topic):
        again = index.facet(ctx.facet, ctx.topic)
        if again is not None and not templates.needs(again.answer):
            best = facets.Match(again, 0.0)
    if ctx.facet and ctx.topic in ITEM_TOPICS and HALL_COUNT_AGAIN.fullmatch(text.strip()):
        again = index.facet(ctx.facet, ctx.topic)
        if again is not None and not templates.needs(again.answer):
            best = facets.Match(again, 0.0)
    # an elliptical turn that plainly names another specific question: 「改签也扣吗」 after a film question
    if best is None and elliptical and candidates and candidates[0].score >= FACET_MIN_ELLIPTICAL \
            and not any(_computed_asked(k, ctx, t, fresh, text) for t in {candidates[0].facet.topic, intent_topic} if t):
        best = candidates[0]
    # an elliptical follow-up on the same facet with a new value: 「IMAX厅也是这样吗」 after the entry rule
    bare = len(text.strip()) <= 6 and text.strip().rstrip("?？。!！").endswith("呢")  # 「银卡呢」「那周二呢」
    # 「IMAX也是吗」 after the entry rule asks that rule again, however sure the classifier is of halls
    same_again = elliptical and ctx.facet is not None and bool(SAME_QUESTION.search(text.strip()))
    follow_topic = ctx.topic if elliptical and not genre and (
        bare or same_again or confidence < SURE or intent_topic in (None, ctx.topic)) else None
    if follow_topic and intent_topic and intent_topic != follow_topic and intent_topic in COMPUTED \
            and COMPUTED[intent_topic].search(text) and confidence >= FACET_MIN:
        follow_topic = None  # 「那天VIP厅多少钱」 after a film question: a price, asked plainly
    # 「普卡有吗」「IMAX也是吗」 after a specific question asks that question again for the new value;
    # 「那看杜比呢」 asks the topic's own (computed) question for it
    same_again = bool(SAME_QUESTION.search(text.strip())) and not (
        follow_topic in COMPUTED and COMPUTED[follow_topic].search(text))
    if best is not None and same_again and follow_topic and ctx.facet and best.facet.topic != follow_topic \
            and len(text.strip()) <= 6 and best_adj < SAME_AGAIN_OVER:
        best = None  # 「有几个」 after the chargers: their count again, not another topic's look-alike
    if best is None and follow_topic and ctx.facet and (
            same_again or not _has_parameters(k, follow_topic, ctx.values_for(follow_topic, fresh, text), text)):
        facet = index.facet(ctx.facet, follow_topic)
        if facet is not None:
            best = facets.Match(facet, 0.0)
    if best is not None:
        topic = best.facet.topic
        ask = Ask(text, ctx.values_for(topic, fresh, text))
        if answer_facet(replies, k, best.facet, ask):
            second = _second_question(index, text, best.facet)
            if second is not None and not answer_facet(replies, k, second, ask):  # 「讲什么的，多长时间」: both
                second = None
            values = _hall_named(k, replies, dict(ask.values))
            values.update(implied_values(k, topic, text))
            _yes_first(replies, text)
            return Turn(replies, ctx.after(topic, best.facet.key, values), True, topic, best.facet.key, scored, True,
                        [second.key] if second is not None else [])
    topic = follow_topic if follow_topic in TOPICS else intent_topic
    if topic is None or topic not in TOPICS:
        return Turn(replies, ctx, False, None, None, scored)
    ask = Ask(text, ctx.values_for(topic, fresh, text))
    used = TOPICS[topic](replies, k, ask)
    values = dict(ask.values)
    values.update(used or {})
    return Turn(replies, ctx.after(topic, None, values), True, topic, None, scored,
                _has_parameters(k, topic, ask.values, text))
