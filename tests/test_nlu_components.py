"""The knowledge-driven NLU components on real Rasa messages (jieba tokens), with a SQLite store."""
from __future__ import annotations

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.db import session_scope
from bot.kb import loader
from bot.nlu import knowledge_names
from bot.nlu.knowledge_entities import KnowledgeEntityExtractor
from bot.nlu.knowledge_tokens import FILM_LEMMA, FilmTitleMasker, KnowledgeVocabulary
from tests.conftest import ROOT


@pytest.fixture()
def names(kb_url, monkeypatch):
    monkeypatch.setattr(knowledge_names, "_checked", 0.0)
    monkeypatch.setattr(knowledge_names, "_names", knowledge_names.Names())
    return kb_url


def tokenize(text):
    message = Message({TEXT: text})
    tokenizer = JiebaTokenizer(JiebaTokenizer.get_default_config(), None, None)
    message.set(TOKENS_NAMES[TEXT], tokenizer.tokenize(message, TEXT))
    return message


def publish_new_film(url):
    files = loader.read_dir(ROOT / "knowledge")
    files["films.yml"] += ("  - title: 银河快递\n    aliases: [快递侠]\n    genre: 科幻\n    runtime_min: 99\n"
                           "    advisory: 全年龄\n    formats: [\"standard:2D\"]\n    synopsis: 星际快递员的一天。\n"
                           "    director: 方一舟\n    cast: [陆小满]\n    release_date: 2026-11-20\n").encode()
    with session_scope(url) as s:
        loader.publish(s, files)
    knowledge_names._checked = 0.0


def test_new_title_is_one_token_masked_and_tagged(names):
    publish_new_film(names)
    KnowledgeVocabulary().process([Message({TEXT: "x"})])
    message = tokenize("银河快递明天几点有")
    tokens = message.get(TOKENS_NAMES[TEXT])
    assert tokens[0].text == "银河快递"
    FilmTitleMasker().process([message])
    assert tokens[0].lemma == FILM_LEMMA and tokens[1].lemma != FILM_LEMMA
    KnowledgeEntityExtractor({"films": True, "patterns": True}).process([message])
    assert [(e["entity"], e["value"]) for e in message.get(ENTITIES)] == [("film", "银河快递")]


def test_alias_and_patterns(names):
    message = tokenize("星际明天还有票吗 手机13812345678 订单xh202611230001")
    FilmTitleMasker().process([message])
    KnowledgeEntityExtractor({"films": True, "patterns": True}).process([message])
    found = {(e["entity"], e["value"]) for e in message.get(ENTITIES)}
    assert found == {("film", "星际"), ("phone", "13812345678"), ("order_id", "xh202611230001")}


def _found(text, entities=(), intent=None):
    from rasa.shared.nlu.constants import INTENT

    message = tokenize(text)
    message.set(ENTITIES, [dict(e, value=text[e["start"]:e["end"]], extractor="DIETClassifier") for e in entities])
    if intent:
        message.set(INTENT, {"name": intent, "confidence": 0.9})
    KnowledgeEntityExtractor({"films": True, "patterns": True}).process([message])
    return [(e["entity"], e["value"]) for e in message.get(ENTITIES)]


def test_grouped_phone_whole_date_and_head_count(names):
    # a phone in groups replaces the "times" DIET read in it
    assert _found("158 9999 6666", [{"entity": "time", "start": 0, "end": 3}, {"entity": "phone", "start": 9, "end": 13}],
                  "inform") == [("phone", "158 9999 6666")]
    assert _found("手机139-8765-4321", intent="inform") == [("phone", "139-8765-4321")]
    # 「12月20号」 is one date, not a head count 12 and a date 月20号
    text = "一百五十人，12月20号那天"
    assert _found(text, [{"entity": "party_size", "start": 6, "end": 8}, {"entity": "date", "start": 8, "end": 12}],
                  "ask_group_booking") == [("party_size", "一百五十人"), ("date", "12月20号")]
    assert _found("我们6个人想订周六晚上的VIP厅", intent="ask_vip_service")[0] == ("party_size", "6个人")
    assert ("party_size", "一个人") not in _found("一个人可以包场吗", intent="ask_group_booking")


def test_diet_partial_title_is_widened(names):
    message = tokenize("我想看熊猫总动员")
    message.set(ENTITIES, [{"entity": "film", "start": 3, "end": 5, "value": "熊猫", "extractor": "DIETClassifier"}])
    KnowledgeEntityExtractor({"films": True, "patterns": True}).process([message])
    assert [(e["entity"], e["value"]) for e in message.get(ENTITIES)] == [("film", "熊猫总动员")]


def test_no_store_means_no_op(monkeypatch, tmp_path):
    from bot.kb import store

    monkeypatch.setenv("KNOWLEDGE_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setattr(store, "_default", None)
    monkeypatch.setattr(knowledge_names, "_checked", 0.0)
    monkeypatch.setattr(knowledge_names, "_names", knowledge_names.Names())
    message = tokenize("星际归途几点")
    FilmTitleMasker().process([message])
    assert all(t.lemma != FILM_LEMMA for t in message.get(TOKENS_NAMES[TEXT]))


def test_ensemble_with_pos_terms_trains_saves_loads_and_mixes_diet(names, tmp_path):
    """The linear model with jieba word/tag terms is stored in the model and mixes DIET's ranking."""
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from bot.nlu.intent_ensemble import CharNgramIntentEnsemble, pos_terms

    assert "WT:北京/ns" in pos_terms("北京天气") and "TT:^_ns" in pos_terms("北京天气")
    examples = {"ask_parking": ["停车场在哪", "能停车吗", "停车怎么收费"],
                "ask_refund": ["怎么退票", "退票收手续费吗", "票能退吗"]}
    data = TrainingData([Message({TEXT: t, INTENT: i}) for i, ts in examples.items() for t in ts])
    storage, resource = LocalModelStorage(tmp_path), Resource("ensemble")
    config = {**CharNgramIntentEnsemble.get_default_config(), "pos_terms": True, "weight": 0.7}
    CharNgramIntentEnsemble.create(config, storage, resource, ExecutionContext({}, "x")).train(data)
    loaded = CharNgramIntentEnsemble.load(config, storage, resource, ExecutionContext({}, "x"))
    assert loaded.pipeline is not None
    message = Message({TEXT: "停车收费吗"})
    message.set(INTENT_RANKING_KEY, [{"name": "ask_refund", "confidence": 0.6}, {"name": "ask_parking", "confidence": 0.4}])
    loaded.process([message])
    ranking = message.get(INTENT_RANKING_KEY)
    assert message.get(INTENT)["name"] == "ask_parking" == ranking[0]["name"]
    assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6


def test_ensemble_char_weight_and_nb_lr_average_survive_saving(names, tmp_path):
    """With char_weight and nb_lr_C the model averages LR and NB-LR, and loads back the same probabilities."""
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from bot.nlu.intent_ensemble import CharNgramIntentEnsemble, MeanProbabilities, NBLogisticRegression

    examples = {"ask_parking": ["停车场在哪", "能停车吗", "停车怎么收费"],
                "ask_refund": ["怎么退票", "退票收手续费吗", "票能退吗"],
                "ask_hours": ["几点开门", "营业到几点", "几点关门"]}
    data = TrainingData([Message({TEXT: t, INTENT: i}) for i, ts in examples.items() for t in ts])
    storage, resource = LocalModelStorage(tmp_path), Resource("ensemble")
    config = {**CharNgramIntentEnsemble.get_default_config(), "pos_terms": True, "weight": 0.7,
              "char_weight": 1.5, "nb_lr_C": 10.0}
    trained = CharNgramIntentEnsemble.create(config, storage, resource, ExecutionContext({}, "x"))
    trained.train(data)
    assert trained.pipeline.named_steps["chars"].transformer_weights == {"chars": 1.5}
    classifier = trained.pipeline.named_steps["lr"]
    assert isinstance(classifier, MeanProbabilities) and isinstance(classifier.estimators[1], NBLogisticRegression)
    loaded = CharNgramIntentEnsemble.load(config, storage, resource, ExecutionContext({}, "x"))
    texts = ["停车收费吗", "退票要钱吗", "几点开门呀"]
    assert (abs(loaded.pipeline.predict_proba(texts) - trained.pipeline.predict_proba(texts)) < 1e-9).all()
    assert list(loaded.pipeline.predict(texts)) == ["ask_parking", "ask_refund", "ask_hours"]
    message = Message({TEXT: "停车收费吗"})
    message.set(INTENT_RANKING_KEY, [{"name": "ask_refund", "confidence": 0.6}, {"name": "ask_parking", "confidence": 0.4}])
    loaded.process([message])
    ranking = message.get(INTENT_RANKING_KEY)
    assert message.get(INTENT)["name"] == "ask_parking" == ranking[0]["name"]
    assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6


def test_ensemble_radical_block_is_off_by_default_and_survives_saving(names, tmp_path):
    """radical_weight adds a weighted block of the characters' radicals; the model loads back the same."""
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from sklearn.feature_extraction.text import TfidfVectorizer

    from bot.nlu.intent_ensemble import CharNgramIntentEnsemble, radical_terms

    assert radical_terms("黄疸A1") == ["R:黄", "R:疒"] and radical_terms("炒鸡") == ["R:火", "R:鸟"]
    default = CharNgramIntentEnsemble.get_default_config()
    assert default["radical_weight"] is None
    off = CharNgramIntentEnsemble({**default, "pos_terms": True}, None, None)._new_pipeline()
    assert [name for name, _ in off.named_steps["chars"].transformer_list] == ["chars", "words"]
    assert isinstance(CharNgramIntentEnsemble(default, None, None)._new_pipeline().named_steps["chars"], TfidfVectorizer)
    examples = {"ask_parking": ["停车场在哪", "能停车吗", "停车怎么收费"],
                "ask_refund": ["怎么退票", "退票收手续费吗", "票能退吗"],
                "ask_food": ["有爆米花吗", "卖热狗吗", "有什么零食"]}
    data = TrainingData([Message({TEXT: t, INTENT: i}) for i, ts in examples.items() for t in ts])
    storage, resource = LocalModelStorage(tmp_path), Resource("ensemble")
    config = {**default, "pos_terms": True, "weight": 0.7, "char_weight": 1.5, "nb_lr_C": 10.0,
              "radical_weight": 0.5}
    trained = CharNgramIntentEnsemble.create(config, storage, resource, ExecutionContext({}, "x"))
    trained.train(data)
    union = trained.pipeline.named_steps["chars"]
    assert [name for name, _ in union.transformer_list] == ["chars", "words", "radicals"]
    assert union.transformer_weights == {"chars": 1.5, "radicals": 0.5}
    loaded = CharNgramIntentEnsemble.load(config, storage, resource, ExecutionContext({}, "x"))
    texts = ["停车收费吗", "退票要钱吗", "有爆米花卖吗"]
    assert (abs(loaded.pipeline.predict_proba(texts) - trained.pipeline.predict_proba(texts)) < 1e-9).all()
    assert list(loaded.pipeline.predict(texts)) == ["ask_parking", "ask_refund", "ask_food"]
    message = Message({TEXT: "停车收费吗"})
    message.set(INTENT_RANKING_KEY, [{"name": "ask_refund", "confidence": 0.6}, {"name": "ask_parking", "confidence": 0.4}])
    loaded.process([message])
    assert message.get(INTENT)["name"] == "ask_parking"
    assert abs(sum(r["confidence"] for r in message.get(INTENT_RANKING_KEY)) - 1.0) < 1e-6
    # without pos_terms the radicals join the character block alone
    chars_only = CharNgramIntentEnsemble({**default, "radical_weight": 0.5}, None, None)._new_pipeline()
    assert [name for name, _ in chars_only.named_steps["chars"].transformer_list] == ["chars", "radicals"]


def test_a_correction_with_a_new_value_is_inform_not_deny():
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY

    from bot.nlu.correction_reader import CorrectionReader

    reader = CorrectionReader()
    said = []
    for text in ("不对不对，是5号厅，我记错了", "不是的，不用了"):
        message = Message({TEXT: text})
        message.set(INTENT, {"name": "deny", "confidence": 0.9})
        message.set(INTENT_RANKING_KEY, [{"name": "deny", "confidence": 0.9}, {"name": "inform", "confidence": 0.05}])
        reader.process([message])
        said.append(message.get(INTENT)["name"])
        assert len(message.get(INTENT_RANKING_KEY)) == 2
    assert said == ["inform", "deny"]


def test_a_forced_emergency_is_not_left_ambiguous_for_the_fallback(names):
    """The guard puts an emergency first; the reading it displaces (a complaint at 0.97) must not sit within
    FallbackClassifier's ambiguity margin of it, or the alarm becomes nlu_fallback."""
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY

    from bot.nlu.emergency_guard import EmergencyGuard

    message = Message({TEXT: "整层楼都是焦糊味，烟感一直在叫，也没人组织疏散，着火了"})
    message.set(INTENT, {"name": "complain", "confidence": 0.972})
    message.set(INTENT_RANKING_KEY, [{"name": "complain", "confidence": 0.972},
                                     {"name": "report_emergency", "confidence": 0.02}])
    EmergencyGuard().process([message])
    ranking = message.get(INTENT_RANKING_KEY)
    assert message.get(INTENT)["name"] == "report_emergency"
    assert ranking[0]["confidence"] - max(r["confidence"] for r in ranking[1:]) > 0.5


def test_form_helpers_read_a_cancel_a_last_phone_and_nothing_said():
    from actions.dialogue import says_nothing
    from actions.forms import cancelled_then_asked, last_phone

    assert cancelled_then_asked("算了不投诉了，我就问问会员日是周几") == "我就问问会员日是周几"
    assert cancelled_then_asked("算了不投诉了") == ""
    assert last_phone("手机号是13512340000，不对，是13512340001") == "13512340001"
    assert says_nothing("？？？") and says_nothing("qwertyuiop") and says_nothing("嗯嗯嗯呜啦啦啦")
    assert not says_nothing("ok") and not says_nothing("👍") and not says_nothing("嗯嗯")
