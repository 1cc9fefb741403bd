"""Is this message an emergency? Cue words say something is happening now; a question about a rule or
about the film is not one. Pure functions shared by the NLU guard and the dialogue's emergency mode."""
from __future__ import annotations

import re

from bot.answers.ask import is_question

from bot.answers.correction import corrected

EMERGENCY = "report_emergency"
CONFIDENCE = 0.97
QUESTION = re.compile(r"(能不能|可不可以|可以|能否|能|允许|行不行|适合|会不会|要不要|是否|有没有限制|不宜).*([吗么嘛]|[?？])|"
                      r"[吗么][?？]?$|吗[?？!！,，\s]?.{0,2}$|呢[?？]?$|(能|可以|行|会|适合|要).{0,6}不[?？]?$|"  # 「能坐不」「会有危险不」
                      r"会不会|能不能|可不可以|行不行|适不适合|要不要紧|有没有危险|危不危险|"
                      r"[吗嘛][,，]|没问题吧|没事吧[?？]?$|(可以|行)吧[?？]?$")  # 「给孩子看ok吗，孩子10岁」: the question, then what it is about
# 「他能去吗」「4DX会不会有危险」: asking whether someone may watch or sit in, with nothing happening yet
RULE_ASK = re.compile(r"(能|可以|适合|能不能|可不可以|会不会|行不行|适不适合).{0,4}(去|看|坐|进|玩|入场|观看|体验|买票)|"
                      r"带.{0,10}(进|入)(场|厅|影厅|去)|有没有危险|危险吗|会不会有危险|有危险吗|危不危险|要紧吗|要不要紧|受得了吗|扛得住吗")  # 「孩子五岁呢」 follows up a rule question
URGENT = re.compile(r"快(?!到|要到|开场|开始|没电)|马上|赶紧|赶快|救命|现在|正在|刚才|刚刚|突然|一直|怎么办|(?<![不得])了$|(?<![不得])了[!！。，,？?]|啊[!！]|[!！]{2,}|"
                    r"怎么还没|还没来|还没到|人呢|保安呢|来人|来个人|叫个人|派个人|派人|过来|不对|先别管|去看看|(?<!没人)(?<!没有人)(?<!不)帮忙|求求|真的有人|没人管")
# Said when nothing is happening: 「如果有人晕倒你们怎么处理」「着火了往哪跑」「有没有AED」 ask about a rule or a
# facility, 「已经被120接走了」「还好没事」「开玩笑的」 say it is over or never was — unless the patron calls for help now.
HYPOTHETICAL = re.compile(r"如果|万一|(怕|担心)(他|她|孩子|小孩|宝宝|自己|我|老人)?(会|被)|的时候.{0,6}(躲在|躲到|往哪|比较安全|安全吗|应该怎么|该怎么)|RU ?GUO|WAN ?YI|JIA ?RU|假如|假设|要是.{0,12}(怎么|会|能)|(?<![说讲骂心听脏狠])的话|以防万一|一般.{0,2}(怎么|点|如何|会|要)|先问问|想了解|了解一下|"
                          r"(你们|工作人员|员工)(一般|会|是)?怎么(处理|办|做|组织)|怎么(组织)?疏散|往哪.{0,2}(跑|走|逃)|怎么逃生|逃生(路线|通道在哪)|"
                          r"紧急情况(下|联系|找)|有没有.{0,14}(急救|AED|除颤|报警器|医务|培训|监控|应急|照明|灭火|手环|检查)|"
                          r"预案|不含.{0,4}(坚果|花生|麸质|乳|奶|蛋)|含不含|急救(箱|证|包|培训)|消防(过关|检查|设施|合格|演练)|演练|测试|识不识|懂不懂急救|会不会急救|防走失")
SETTLED = re.compile(r"已经.{0,8}(接走|带走|找到|找回|恢复|好了|没事|送走|送医|醒了|灭了)|还好没事|没破皮|没受伤|没大碍|不严重|"
                     r"误响|啥事没有|什么事都没有|服务(太|很|真|特别|非常)?好|就是提醒|想反馈|反馈一下|表扬|哈哈|哈$|可爱|搵返|揾返|找返|搵到|揾到|差点|差一点|开玩笑|发错了|原来是|"
                     r"现在(已经)?(恢复|好了|找到了|没事)|没什么事了|找回来了|找着了|(现在|而家)?(找回|找到)(了|喇|啦)|误鸣|误报|虚惊")
STRONG = re.compile(r"派人来|派.{0,2}人(来|过来)|(?<![传飘吹冒漏透缓醒回])过来|能(不能)?(来|过来)(一下|个人)|真的?着火|不是特效|快停|求你们快|通知值班|快来|快派|快点来|快过来|赶紧来|赶快来|马上来|来人|来个人|派个人|派人过来|救命啊|救救|[!！]{2,}|求求")
WAY_OF_SPEAKING = re.compile(r"(气|吓|急)出.{0,2}(心脏病|病|毛病)|闻着(要|想)吐|闻得(要|想)吐|恶心死|饿晕|饿死|困死|累死|逼疯|疯了|烦死|气死|笑死|无聊死|快被.{0,4}(死|疯)")
HURRY = re.compile(r"^(快点?|快快快?|快一点|搞快点|赶紧|赶快|人呢|在吗|有人吗|还要多久|怎么还没人)[!！?？。.~～,，\s]*$")
# 「孩子的外套落在IMAX厅了」「女儿的布娃娃丢在卖品部」: a lost thing, however upset the child is
LEFT_THING = re.compile(r"(落在|丢在|忘在|掉在|遗落|忘了拿|落下了|丢了个|丢了一个)")
ILL_NOW = re.compile(r"犯了|发作|不行了|快来|现在")
# 「车里锁着个小孩」: a child shut in a car
LOCKED_IN = re.compile(r"(车|SUV|后座).{0,4}(有个|有一个|锁[着著]|关着).{0,3}(婴儿|小孩|孩子|宝宝)|(锁[着著]|锁在|锁车里|关在车里|困在车里).{0,12}(小孩|孩子|宝宝|娃|婴儿|宝宝)|"
                       r"(小孩|孩子|宝宝|娃|婴儿).{0,12}(锁在|锁着|关在车里|困在车里|还在车里|在安全座椅)")
# 「后排有人抽烟」「救命，买错场次了」: smoke of a cigarette, a ticket in trouble — nobody in danger
SMOKING = re.compile(r"抽烟|吸烟|电子烟")
FIRE = re.compile(r"火警铃|警铃.{0,4}响|火警.{0,2}响|烧塑料|黑烟|烟往上|火星|烟越来越(大|浓)|烟(好|很|太)大|好大的烟|点着|烧着|浓烟|烟很大|着火|起火|火灾|失火|火苗|火光|烧起来")
ORDER = re.compile(r"改签|退票|出票|买错|付了款|付款|扣款|退款|取票|订单")
# 「孩子发烧了来不了，票能退吗」: nobody at the cinema is in danger; the patron asks about the ticket
NOT_HERE = re.compile(r"来不了|去不了|(?<!能)不能来|没法来|来不成|去不成|来不到|去不到|不来得|去不得|来不及去")
# 「我儿子去厕所一直没回来」「小孩丢了」: a child (or a frail relative) missing now
MISSING = re.compile(r"(孩子|小孩|小朋友|儿子|女儿|个仔|细路|侄子|侄女|外甥|孙子|孙女|弟弟|妹妹|宝宝|娃|闺女|我爸|我妈|老人|爷爷|奶奶|外婆|外公|\d+岁)"
                     r"(?!的).{0,16}?(不见了|不在座位|不在门口|没找到|人(就|都)?没了|不在原地|不在原处|不知道去哪|不知去向|找了半天|没回来|没出来|找不到|找不着|找遍|走丢|丢了(?!.{0,2}(东西|手机|钱包|外套|包))|被人(带走|抱走|拉走))")
# 「有没有人看到一个小男孩，戴眼镜…他是我儿子」「带着弟弟去买爆米花，回来只剩老大一个了」: a child missing, told otherwise
SEEN_ASKED = re.compile(r"找不到(我|我的)?(孩子|小孩|儿子|女儿|妈|爸|老人|奶奶|爷爷|外婆|外公|宝宝)|(有没有人|谁)(看到|看见|见到).{0,24}(他|她)是我(的)?(儿子|女儿|孩子|小孩|宝宝|弟弟|妹妹)|"
                        r"(带着|领着).{0,8}(弟弟|妹妹|孩子|小孩).{0,12}(回来|出来).{0,4}只(剩|有).{0,6}一个")
# 「最近老是胸闷，该挂什么科」「火锅店着火那个新闻」「我家猫走丢了」: a health question for a doctor, the news, a pet —
# nobody at the cinema in danger
ELSEWHERE = re.compile(r"听说|家里(?!人在)|在家(里)?|挂.{0,3}科|该挂|挂号|去医院.{0,4}(看|挂|查)|最近(老|总)是|新闻|报道|(猫|狗|宠物).{0,4}(走丢|丢了|不见了|跑了|跑丢)")
# 「🆘🆘 7号厅」: the distress sign itself
SOS = re.compile(r"🆘|求救")
# what makes a what-if: 「有人心脏停了，有没有AED」 asks for the kit for someone now, 「万一有人晕倒有没有AED」 asks ahead
KIT_ASKED = re.compile(r"有没有.{0,14}(急救|AED|除颤|医务)[^，,。？?]*")
IF_WORDS = re.compile(r"如果|万一|RU ?GUO|WAN ?YI|JIA ?RU|假如|假设|要是|的话|以防万一|一般|想了解|了解一下|先问问|提前")
# 「…爆炸声，然后就有烟从墙缝进来了」: smoke in the room is no scene of the film
SMOKE_IN = re.compile(r"有烟|冒烟|烟从|进烟|烟进来|烟雾.{0,4}(进来|冒出)")
# fire said to be growing now: 「烟越来越大了，往哪个门跑」 is no what-if
FIRE_NOW = re.compile(r"现在|越来越|还在|正在|快|一直")
# 「人已经送走了」「没事了」: the patron says the emergency is over, and the conversation may move on
OVER = re.compile(r"没事了|没什么事了|(?<![不没])醒了|送走了|送医院了|送去医院|被接走|(把人|人)?(已经)?带走了|(?<!没)好(一)?点了|"
                  r"(救护车|120|医生|急救人员|保安|警察|消防|工作人员|你们的人|经理)(已经)?(来了|到了|过来了|赶到了)|"
                  r"处理好了|处理完了|已经好了|人好了|好多了|缓过来了|没大碍了|包扎好了|止住血了|血止住了|"
                  r"醒过来了|已经醒了|火灭了|灭了火|找到了|找着了|已经解决|(已经|都)(出来了|撤出来了|疏散了|到外面了)")
# 「红色羊毛的 有流苏」: what a lost thing looks like (colour, material, make), with no one in danger named
SOMEONE = re.compile(r"穿|着|著|戴|孩|娃|女|仔|佢|儿子|女儿|男孩|女孩|老人|奶奶|爷爷|外婆|外公|婴儿|宝宝|人|他|她")
ITEM = re.compile(r"羽绒服|外套|衣服|帽子|围巾|手套|书包|背包|钱包|手机|眼镜|雨伞|水杯|保温杯|玩具|娃娃|公仔|钥匙|耳机|充电宝|证件|身份证|卡包")
# a thing gone: lost, left, taken (a robbery is a cue of its own)
ITEM_GONE = re.compile(r"丢了|丢在|弄丢|落下|落在|不见了|找不到|找不着|没看见|私吞|被(人)?(拿|偷|顺)走|偷了|捡到|捡走")
THING_DESCRIBED = re.compile(r"[红黑白蓝绿黄灰粉紫棕橙米]色|羊毛|羊绒|真皮|皮质|帆布|牌子|流苏|图案|印着|挂件|款式|带拉链|有拉链")


def is_over(text: str) -> bool:
    return bool(OVER.search(text or ""))


CLAUSE_END = re.compile(r"[。，,！!；;～~]+")
THANKS = re.compile(r"^(谢谢|多谢|感谢|谢了|好的|好|嗯|行|ok)[你您们啦了呀哈]*$", re.I)


def without_over(text: str) -> str:
    """「保安来了。刚才说的积分，人工能帮我查吗」: the question after the news that help has come (the news
    ends emergency mode; the answer is to the question)."""
    rest, over = text or "", False
    while True:
        m = CLAUSE_END.search(rest)
        if not m or not (OVER.search(rest[:m.start()]) or (over and THANKS.match(rest[:m.start()].strip()))):
            break
        over = over or bool(OVER.search(rest[:m.start()]))
        rest = rest[m.end():].strip()
    if over and (len(rest) >= 4 and is_question(rest) or len(rest) >= 8):
        return rest  # 「工作人员来了。台阶的问题也请你们处理一下」: the request, not who came
    return text


# 「不过他有高血压」「我怀孕五个月了」: a condition someone has, told to ask about a rule, not a turn for the worse
# (an illness named alone is not enough: 「我爸有哮喘…」 may be the emergency itself)
CONDITION = re.compile(r"怀孕|孕妇|怀着|孕期|[吧罢][?？。]?$|(可以|能|行|没问题)吧")
# 「打我电话」「前台翻白眼什么意思」: a number to call back on, a rude look — nobody in danger
NOT_DANGER = re.compile(r"翻白眼给.{0,2}看|态度.{0,10}翻白眼|翻白眼.{0,10}态度|发?抖音|打(我|他|她)?(的|家)?(电话|手机|号码|手机号|座机|固话|分机|办公室|单位|公司)|(对我|冲我|朝我|给我|跟我)翻白眼|翻白眼.{0,4}(什么意思|啥意思|几个意思|态度)|"
                        r"(前台|服务员|工作人员|员工|收银|检票|店员|客服)翻白眼|"
                        # 「投诉检票口的工作人员！！态度极差，我问一句他直接翻白眼」: a rude look told with who did it
                        r"(态度|素质|投诉)[^。]{0,40}翻白眼|翻白眼[^。]{0,20}(态度|素质)")
FACILITY_ASKED = re.compile(r"有没有.{0,6}(灯|扶手|电梯|坡道|设施|轮椅|座位|指示)|(在哪|几楼|哪里有)[?？。]*$|"
                            r"(哪里|哪儿|哪)(能|可以|有)(喂奶|哺乳|换尿布|热奶|休息|充电|寄存|坐)")  # 「宝宝饿哭了，哪里能喂奶」
NUISANCE = re.compile(r"打电话|玩手机|讲电话|大声说话|聊天|踢(我)?椅子|剧透|开闪光|拍照|录像|脚放|占座")
WAIT_ASKED = re.compile(r"(多久|多长时间|几时|什么时候|啥时候|几点|几耐).{0,4}(处理|回复|答复|回我|覆我|回电|联系|给.{0,3}(答复|说法|回复|结果|回音))")
PARTY_TALK = re.compile(r"(叫|约|带|凑|再来|多来|拉)(上)?(几|[一二两三四五六七八九十\d]+)个(人|朋友|同事|同学)|"
                        r"凑(够|齐|到)?[一二两三四五六七八九十百\d]+个?人?")
HALL_WORDS = re.compile(r"4DX|4D|IMAX|杜比|巨幕|VIP|影厅|厅|动感座椅|电影")
FOLLOW_UP = re.compile(r"^.{0,10}呢[?？。]*$")
# 「闪光那段特效一出来孩子就抽了」: an effect in the hall can set off a real emergency, so the effect words
# stand down only when nobody is said to be unwell
FILM_EFFECT = re.compile(r"那段|特效|音效")
# 「看着不像是电影里的」「但这次冒的是黑烟」: the patron says it is no part of the film
NOT_THE_FILM = re.compile(r"不像(是)?(电影|片子|特效)(里)?(的)?|不是(电影|片子|特效)(里)?(的)?|但这次|可这次|这次不一样")
ABOUT_FILM = re.compile(r"电影里|片子里|片里|剧情|镜头|预告|演的|主角|纪录片|好不好看|好看|感人|太爽|震撼|好评|灾难片|打斗场面|血腥场面|"
                        r"讲什么|讲啥|讲的是|什么内容|情节|枪战|战争片|动作片|爆炸场面|爆炸戏|打戏|燃爆|爆炸头|爆炸声|在放|结尾|反转|票房|爆了吗|(?<!一)大片(?!泡)")


PRAISE = re.compile(r"(好吃|好看|好玩|好听|爽|燃|香|甜|帅|美)(到|得)?(爆炸|爆了|爆)")
HYPERBOLE = re.compile(r"(好吃|好看|好玩|好听|爽|燃|香|甜|帅|美)(到|得)?(爆炸|爆了|爆)|闻着(要|想)吐|闻得(要|想)吐|(?:闷|热|冷|吵|气|笑|吓|挤|累|烦|难受|看|晃|转|震|哭|熏|排|等|堵|贵)得.{0,4}|"
                       r"(?:排队|等|堵车|堵)(排)?到.{0,2}要?晕倒?|(气|吓|急)出.{0,2}(心脏病|病|毛病)|饿晕|饿死|困死|逼疯|疯了|(跟|像).{0,6}一样|感觉(要|快).{0,2}|晕车|晕3D|晕4D|(闷|热|冻|吓|烦|气|吵|堵|挤)死|心跳都停")


def _cue(text: str, cues) -> bool:
    # 「闷得喘不过气」「笑得喘不过气」 are ways of speaking, not a patron in danger
    plain = HYPERBOLE.sub("", text)
    squeezed = plain.replace(" ", "")  # 「kuai lai ren」: pinyin cues are kept without their spaces
    return any(c and (c.upper() in plain or c.upper() in squeezed) for c in cues)


# Someone named and what is happening to them, a few characters apart (「旁边大爷捂着胸口叫不应」「我妈突然吐了」):
# phrasings the cue list does not have still say who and what.
PERSON = r"(?:人|他|她|弟弟|妹妹|哥哥|姐姐|老婆婆|老伯|阿伯|大爷|大妈|阿姨|叔叔|老人|老太太|老爷子|小孩|孩子|儿子|女儿|宝宝|娃|朋友|同伴|同事|老公|老婆|" \
         r"女朋友|男朋友|妈|爸|爷爷|奶奶|外婆|外公|姥姥|姥爷|孕妇|小伙子|姑娘|男的|女的|观众|先生|女士|大叔|大哥|大姐|小伙|" \
         r"同学|婆婆|公公|岳父|岳母|老伴|家人|有位|有个|我)"
SYMPTOM = r"(?:晕|昏|倒下|倒地|倒了|吐了|吐血|抽搐|抽筋|喘不|喘气|发紫|发白|发青|冷汗|流血|出血|满脸是血|摔|不醒|不动了|没气|" \
          r"没反应|翻白眼|发烧|高烧|烧到|噎|呛到|卡住了|肿了|发麻|麻了|瘫|不会动|叫不|站不起|起不来|说不出话|心口疼|胸口|" \
          r"没醒|满头是血|满身是血|一头血|头上(都)?是血|夹断|掐了.{0,2}脖子|掐住.{0,2}脖子|讲不出话|说不出话|(身体|身子|手|腿|脚)没力|抽了(?!烟|奖|签|根|口|血|号)|开始喘|在喘|喘得|想吐|喊头痛|咳不出|吸不进|呛进|肚子?(好|很|特别|非常)?(疼|痛)|透不过气|上不来气|窒息|昏迷|休克|痉挛|发作|一动不动|冰凉|冰的|不回应|没回应|乱蹬|往上翻|开始抽|在抽(?!烟|奖|签|纸)|一抽一抽|不出声|没声了|滑到地上|往下滑|眼前发黑|脸白|吞了|噎住|哽|" \
          r"疼得|痛得|心慌|心跳(很|特别|好|非常)?快|压了块石头|呼吸(困难|急促|不上来)|发抖|浑身抖|撑不住|快不行|不行了|动不了|" \
          r"起疹|过敏|烫伤|肚子疼|肚子痛|头疼得|意识不清|说胡话|脸色(发|很|特别|好)?(白|青|紫|差))"
# symptoms that say a body in trouble by themselves, told anywhere in a long voice message about someone
GRAVE = r"(?:一阵一阵(?:地|的)?(?:疼|痛)|阵痛|宫缩|破水|见红|血.{0,3}(?:止不住|不停)|血都出来|喉咙发紧|嘴巴肿|肿起来|抓着?脖子|脸涨得?(?:通红|发紫)|出冷汗|冒冷汗|直冒冷汗|心口.{0,3}(?:闷|痛|疼)|胸口.{0,3}(?:闷|痛|疼)|抽搐|昏迷|休克|晕倒|晕过去|倒地|没呼吸|没意识|叫不醒|喘不上气|呼吸困难|嘴唇发紫)"
PERSON_SYMPTOM = re.compile(PERSON + r".{0,10}?" + SYMPTOM + "|" + PERSON + r".{0,40}?" + GRAVE)
GRAVE_RE = re.compile(GRAVE)
# 「血还是止不住」: bleeding that does not stop, whoever it is
BLEEDING = re.compile(r"血.{0,3}(止不住|不停|流个不停|一直流|越流越多)")
# 「上周我在你们那摔了一跤，到现在没人管」「上次有人晕倒你们处理得很好」: an incident told afterwards is a complaint
# or feedback, not an emergency — unless the message says something is happening now
PAST = re.compile(r"上次|上周|上星期|上个月|上回|之前|以前|去年|前几天|前阵子|那次|那天|昨天|昨晚|前天|当时|上礼拜")
NOW = re.compile(r"(?<![好很挺都较])快来|快点|快派|赶紧|赶快|救命|正在|还在|(?<!到)现在.{0,6}(怎么办|又|突然|晕|疼|痛|吐|流|不行|喘)|"
                 r"此刻|刚刚|刚才|[!！]{2,}|来人")

# 「救命，我的电子票找不到了」: a cry for help about a ticket or an order, with no one in danger besides it
EXCLAIMED = re.compile(r"救命啊?|救救我|要命|完了|崩溃")
TICKET_TROUBLE = re.compile(r"电子票|取票码|取票机|票.{0,4}(找不到|不见|没了|丢了|删了|打不开|出不来)|订单|二维码|付不了款|支付失败|扣了.{0,2}钱")

ILL_SO_REFUND = re.compile(r"(想|要|能|可以|得)(退|改签|换场|改期|改到)|退(票|掉|了吧)|改签")
MILD = re.compile(r"(有点|有些|有一点|一点|小)(发烧|感冒|不舒服|头疼|头痛|咳嗽|拉肚子)|感冒了|生病了|(?<!高)烧了")
# where someone in danger would be: the refund that names none of these is about a later show
SUDDEN = re.compile(r"突然|正在|刚才|刚刚|现在|一下子")
AT_CINEMA = re.compile(r"有人|旁边|前面|后面|隔壁|厅|影院|场内|座位|卫生间|洗手间|厕所|门口|大堂|大厅|这里|这边|现场|楼梯|电梯|停车场")
WAIT_TOLD = re.compile(r"^(都|已经)?(过了|等了|过去)(快|差不多|将近|有)?.{0,4}(分钟|小时|钟头|半天|个钟)了?[!！。，,~～]*$")
COMPLAINT_TONE = re.compile(r"不像话|太差|投诉|什么态度|没人管|没人帮|没人理|过分|离谱|差评|服务太|太不负责")

FEE_ASKED = re.compile(r"扣多少|扣几|手续费|收多少|多少钱|能退吗|能不能退|可以退吗|退得了吗")
HOW_TO = re.compile(r"(怎么做|如何做|怎么操作|怎么用|的步骤|什么步骤|方法是什么|是什么方法)[?？。]*$")
ADVICE = re.compile(r"(喝什么|吃什么|喝点什么|吃点什么|用什么药|吃什么药|怎么缓解|如何缓解)(比较好|好|合适|有用)?[?？。]*$")
ASKS_FOR = re.compile(r"(还能|能不能|可不可以|可以|能)[^，,。]{0,6}(吗|么|不)[?？]*$")
RUNNER_UP = 0.3  # an emergency this likely, said urgently, is treated as one: a false alarm costs less


def decide(text: str, intent: str, cues, rule_words, emergency_confidence: float = 0.0) -> bool:
    """Whether the message is an emergency (True), given the classifier's intent (and how likely it
    found an emergency, when it chose something else)."""
    raw = (text or "").upper().replace("不是开玩笑", "")
    text = NOT_DANGER.sub("", raw)
    if corrected(raw) is not None and not danger_named(raw, cues):
        return False  # 「打错了，是500分」「啊我说错了，是杜比厅」: a value corrected, nobody in danger
    rule_question = bool(QUESTION.search(text)) and not URGENT.search(text)
    strong = bool(STRONG.search(text))
    not_the_film = bool(NOT_THE_FILM.search(text))
    if ABOUT_FILM.search(NOT_THE_FILM.sub("", text)) and not strong and not NOW.search(text) and not SMOKE_IN.search(text):
        return False
    if FILM_EFFECT.search(text) and not strong and not NOW.search(text) and not PERSON_SYMPTOM.search(text) \
            and not (not_the_film and FIRE.search(text)):
        return False
    if PAST.search(text) and not NOW.search(text):
        return False  # told afterwards: the complaint or the thanks, not an alarm
    if OVER.search(text) and not strong:
        rest = HYPERBOLE.sub("", OVER.sub("", text))
        if not (PERSON_SYMPTOM.search(rest) or FIRE.search(rest) or MISSING.search(rest)
                or _cue(rest.replace("救护车", "").replace("120", ""), cues)):
            return False  # 「救护车来了」「我们已经出来了」: help has come, nothing new is happening
    if ELSEWHERE.search(text) and not strong and not NOW.search(text):
        return False
    fire_now = bool(FIRE.search(text) and FIRE_NOW.search(text))
    hypothetical = HYPOTHETICAL.sub("", text) != text
    kit_for_now = bool(KIT_ASKED.search(text)) and not IF_WORDS.search(text) and "了" in text \
        and danger_named(KIT_ASKED.sub("", text), cues)
    what_if = hypothetical and not fire_now and not (kit_for_now and not HYPOTHETICAL.search(KIT_ASKED.sub("", text)))
    if (what_if or SETTLED.search(text) or NOT_HERE.search(text)) and not strong:
        return False  # a what-if, a rule or facility question, or over already
    if rule_question and RULE_ASK.search(text):
        return False  # whether someone may watch or sit in: a rule question, whatever the classifier leaned to
    if QUESTION.search(text) and RULE_ASK.search(text) and HALL_WORDS.search(text) and not strong \
            and not PERSON_SYMPTOM.search(HYPERBOLE.sub("", text)):
        return False  # 「我朋友喝多了，还能进4DX厅吗」: whether he may go in, asked after saying why
    plain = HYPERBOLE.sub("", text)
    if TICKET_TROUBLE.search(text) and not danger_named(EXCLAIMED.sub("", text), cues) and not LOCKED_IN.search(text):
        return False  # 「救命，我的电子票找不到了，马上开场了」: a ticket in trouble, said in a hurry
    if LEFT_THING.search(text) and not PERSON_SYMPTOM.search(plain) and not ILL_NOW.search(text):
        return False  # a thing left behind is a lost item
    if HURRY.match(text.strip()):
        return False  # 「快点！！！」 after asking for a person: impatience, with nobody said to be in danger
    if MISSING.search(plain) or SEEN_ASKED.search(plain) or LOCKED_IN.search(text) or SOS.search(text):
        return True
    if ILL_SO_REFUND.search(text) and MILD.search(text) and not strong and not NOW.search(text) \
            and not GRAVE_RE.search(text):
        return False  # 「孩子有点发烧，今晚的票想退」: why a ticket is returned, nobody in danger here
    if ILL_SO_REFUND.search(text) and not strong and not NOW.search(text) and not AT_CINEMA.search(text) \
            and not SUDDEN.search(text):
        return False  # 「我腿骨折了走不了路，明天的票帮我退掉」: why a ticket is returned, nobody in danger here
    if ILL_SO_REFUND.search(text) and FEE_ASKED.search(text) and not strong and not GRAVE_RE.search(text) \
            and not AT_CINEMA.search(text):
        return False  # 「孩子突然发烧，开场前半小时退票扣多少钱」: what returning the ticket costs
    if EXCLAIMED.search(text) and QUESTION.search(text) and not danger_named(EXCLAIMED.sub("", raw), cues) \
            and not LOCKED_IN.search(text) and not strong:
        return False  # 「救命，明天下午还有熊猫总动员吗」: a cry about a ticket or a showing, nobody in danger
    if (HOW_TO.search(text) or ADVICE.search(text)) and not PERSON_SYMPTOM.search(plain) and not strong \
            and not NOW.search(text) and not AT_CINEMA.search(text):
        return False  # 「海姆立克急救法怎么做」「中暑了喝什么比较好」: how to, or what helps — asked, not happening
    if SMOKING.search(text) and not FIRE.search(text):
        return False
    if _cue(text, cues) or PERSON_SYMPTOM.search(plain) or FIRE.search(text) or BLEEDING.search(plain):
        return not rule_question
    if ORDER.search(text):
        return False
    if PARTY_TALK.search(text):
        return False  # 「那我再叫几个人，凑二十二个」: more people for a booking, nobody called for help
    if FACILITY_ASKED.search(text) or NUISANCE.search(text):
        return False  # 「台阶有没有地灯」「有人一直在打电话」: a facility question or a nuisance, no one in danger
    if WAIT_ASKED.search(text):
        return False  # 「多久有人处理」: how long a report takes, no one in danger named
    if FOLLOW_UP.search(text):
        return False  # 「孩子五岁呢」「那老人呢」: a follow-up question, and no one in danger named
    if text != raw:
        return False  # the call-back number or the rude look was all it said
    if THING_DESCRIBED.search(text) and not SOMEONE.search(text) and not strong and not NOW.search(text) \
            and not URGENT.search(plain):
        return False  # a thing described, and nothing named that happens to anyone
    if ITEM.search(text) and ITEM_GONE.search(text) and not danger_named(raw, cues) and not strong:
        return False  # 「在你们这丢了手机…肯定被谁私吞了」: a thing lost (or taken), however upset; nobody in danger
    if intent == EMERGENCY and ITEM.search(text) and not danger_named(raw, cues) and not strong \
            and not NOW.search(text) and not URGENT.search(plain):
        return False  # 「红色羽绒服，小孩穿的，帽子上有毛」: the thing a child lost, described; nobody in danger named
    if WAIT_TOLD.search(text) and not danger_named(raw, cues) and not strong:
        return False  # 「过了快二十分钟了」: how long an order (or a reply) has taken
    if COMPLAINT_TONE.search(text) and not danger_named(raw, cues) and not strong:
        return False  # 「门口没人帮忙，通道那还堆着杂物，太不像话了」: a complaint, with no one in danger named
    if PRAISE.search(text) and not danger_named(raw, cues) and not strong and not NOW.search(text):
        return False  # 「爆米花好吃到爆炸」: the only alarming word was praise
    if intent == EMERGENCY:
        # nothing said to be happening, asked as a question — or said as a way of speaking (「我快饿晕了」);
        # 「开场后还能进吗」「能换个座吗」 ask for something, however hurried, with no one in danger named
        asked = bool(QUESTION.search(text)) and not strong and not NOW.search(text)
        return not rule_question and not asked and not WAY_OF_SPEAKING.search(text) and not (CONDITION.search(text) and not NOW.search(text) and not URGENT.search(plain))
    # the runner-up reading is no report when the message asks to be allowed something (「我快到了，堵车堵死了，
    # 开场后还能进吗」「…能换个座吗」) with nothing said to be happening now
    asked = bool(ASKS_FOR.search(text)) and not strong and not NOW.search(text)
    return emergency_confidence >= RUNNER_UP and bool(URGENT.search(plain)) and not rule_question and not asked


def danger_named(text: str, cues) -> bool:
    """Whether the words name someone in danger or a fire (a cue, a person and a symptom, a missing child) —
    not only a call for staff (「赶紧派人过来」), which inside a complaint is the complaint's urgency."""
    plain = HYPERBOLE.sub("", NOT_DANGER.sub("", (text or "").upper()))
    return bool(_cue(plain, cues) or PERSON_SYMPTOM.search(plain) or FIRE.search(plain) or MISSING.search(plain)
                or LOCKED_IN.search(plain))
