"""The Rasa speed-ups decide exactly what Rasa decides (bot/rasa_speedups.py)."""
import jsonschema
import pytest


@pytest.fixture(scope="module")
def patched():
    import rasa.core.processor  # noqa: F401  (the server's import order: Rasa first, then bot.nlu)
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    from bot import rasa_speedups

    rasa_speedups.install()
    return RemoteAction, Event, original


def test_action_results_validate_as_before(patched):
    RemoteAction, _, _ = patched
    good = {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": [{"text": "hi"}]}
    assert RemoteAction._validate_action_result(None, good) is True
    schema = RemoteAction.action_response_format_spec()
    for bad in ({"events": "x"}, {"responses": [{"text": 3}]}, {"events": [{"name": "no type"}]}):
        try:
            jsonschema.validate(bad, schema)
            expected = None
        except jsonschema.ValidationError as e:
            expected = e.message
        if expected is None:
            assert RemoteAction._validate_action_result(None, bad) is True
        else:
            with pytest.raises(jsonschema.ValidationError) as err:
                RemoteAction._validate_action_result(None, bad)
            assert err.value.message.startswith(expected) and "Action server response" in err.value.message


def test_event_types_resolve_as_before(patched):
    _, Event, original = patched
    from rasa.shared.utils.common import all_subclasses

    for cls in all_subclasses(Event):
        assert Event.resolve_by_type(cls.type_name) is original(cls.type_name)
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")
    assert Event.resolve_by_type("no_such_event", Event) is Event


# -- the speed-up registry -------------------------------------------------------------------------------

def test_speedups_can_be_switched_off_one_by_one(monkeypatch):
    from bot import rasa_speedups

    monkeypatch.delenv("XINGHE_RASA_SPEEDUPS", raising=False)
    monkeypatch.setenv("XINGHE_RASA_SPEEDUPS_OFF", "rule_keys, action_keepalive")
    assert rasa_speedups.enabled() == ["action_schema", "event_types", "linear_scores"]
    monkeypatch.setenv("XINGHE_RASA_SPEEDUPS", "0")
    assert rasa_speedups.enabled() == []
    monkeypatch.delenv("XINGHE_RASA_SPEEDUPS")
    monkeypatch.setenv("XINGHE_RASA_SPEEDUPS_OFF", "rule_key")  # a typo must not silently keep it on
    with pytest.raises(ValueError, match="rule_key"):
        rasa_speedups.enabled()


# -- linear_scores (bot/speedups/sklearn_predict.py) -------------------------------------------------------

def _fitted_union():
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    rng = np.random.default_rng(7)
    alphabet = list("停车多少钱退票几点有场周二学生儿童票价")
    texts = ["".join(rng.choice(alphabet, size=rng.integers(2, 9))) for _ in range(300)]
    labels = [f"i{len(t) % 5}{t[0] in '停退'}" for t in texts]
    union = FeatureUnion([("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)),
                          ("pairs", TfidfVectorizer(analyzer="char", ngram_range=(2, 2)))])
    X = union.fit_transform(texts)
    lr = LogisticRegression(C=30.0, max_iter=500).fit(X, labels)
    # as the model's saga fit stores it: C order, so coef_.T is the Fortran-ordered view scipy copies
    lr.coef_ = np.ascontiguousarray(lr.coef_)
    return union, lr, texts, labels


def test_linear_scores_are_bitwise_those_of_sklearn():
    import numpy as np
    from scipy import sparse
    from sklearn.pipeline import _transform_one
    from sklearn.utils.extmath import softmax

    from bot.speedups import sklearn_predict

    assert sklearn_predict.install()
    union, lr, texts, labels = _fitted_union()
    assert lr.coef_.flags["C_CONTIGUOUS"] and not lr.coef_.T.flags["C_CONTIGUOUS"]
    for text in texts[:60] + ["没见过的字", ""]:
        X = union.transform([text])
        # FeatureUnion: each transformer in order, stacked — what the joblib path computes
        reference_X = sparse.hstack([_transform_one(t, [text], None, None) for _, t in union.transformer_list]).tocsr()
        assert (X != reference_X).nnz == 0
        # sklearn's own formula, on the Fortran-ordered view
        reference = X @ lr.coef_.T + lr.intercept_
        scores = lr.decision_function(X)
        assert np.array_equal(scores, reference)
        assert np.array_equal(lr.predict_proba(X), softmax(reference.copy(), copy=False))
    # dense input takes sklearn's path unchanged
    dense = union.transform(texts[:3]).toarray()
    assert np.array_equal(lr.decision_function(dense), dense @ lr.coef_.T + lr.intercept_)


def test_linear_scores_follow_a_refit():
    import numpy as np

    from bot.speedups import sklearn_predict

    assert sklearn_predict.install()
    union, lr, texts, labels = _fitted_union()
    X = union.transform(texts[:20])
    before = lr.decision_function(X)
    lr.set_params(C=0.01).fit(union.transform(texts), labels)  # a new coef_ array: the cached transpose is stale
    lr.coef_ = np.ascontiguousarray(lr.coef_)
    after = lr.decision_function(X)
    assert not np.array_equal(before, after)
    assert np.array_equal(after, X @ lr.coef_.T + lr.intercept_)


# -- rule_keys (bot/speedups/rule_keys.py) ---------------------------------------------------------------

def _rasa_get_possible_keys(policy, lookup, states):
    """Rasa 3.6.21's RulePolicy._get_possible_keys, verbatim."""
    possible_keys = set(lookup.keys())
    for i, state in enumerate(reversed(states)):
        possible_keys = set(filter(lambda _key: policy._is_rule_applicable(_key, i, state), possible_keys))
    return possible_keys


def _random_rules_and_states(seed: int):
    import json
    import random

    rnd = random.Random(seed)
    intents = ["greet", "ask_price", "inform", "affirm", "thank"]
    actions = ["action_listen", "action_price", "action_route", "utter_greet", "service_form"]

    def state(rule: bool):
        s = {}
        if rnd.random() < 0.9:
            s["prev_action"] = {"action_name": rnd.choice(actions)}
        if rnd.random() < 0.7:
            user = {"intent": rnd.choice(intents)}
            if rnd.random() < 0.4:
                user["entities"] = tuple(sorted(rnd.sample(["date", "hall_type", "ticket_type"], rnd.randint(1, 2))))
            s["user"] = user
        if rnd.random() < 0.4:
            s["active_loop"] = {"name": rnd.choice(["service_form", "should_not_be_set"])}
        if rnd.random() < 0.4:
            s["slots"] = {"date": rnd.choice([(1.0,), (0.0,), "should_not_be_set"])}
        return s

    # many rules share a length, so ties for the longest key (decided by set order) really occur
    lookup = {}
    for _ in range(120):
        key = json.dumps([state(True) for _ in range(rnd.randint(1, 3))], sort_keys=True)
        lookup[key] = rnd.choice(actions)
    conversations = [[state(False) for _ in range(rnd.randint(1, 5))] for _ in range(150)]
    return lookup, conversations


def test_rule_keys_match_rasa_including_set_order():
    from rasa.core.policies.rule_policy import RulePolicy

    from bot.speedups import rule_keys

    rule_keys.install()
    assert RulePolicy._get_possible_keys.__module__ == "bot.speedups.rule_keys"
    policy = object.__new__(RulePolicy)  # _get_possible_keys needs no trained state but the lookup it is given
    hits = 0
    for seed in range(4):
        lookup, conversations = _random_rules_and_states(seed)
        for states in conversations * 2:  # the second pass is answered from the cache
            expected = _rasa_get_possible_keys(policy, lookup, states)
            got = policy._get_possible_keys(lookup, states)
            assert got == expected
            assert list(got) == list(expected)  # iteration order: max(keys, key=len) breaks ties by it
            if expected:
                assert max(got, key=len) == max(expected, key=len)
                hits += 1
    assert hits > 100
    # another lookup (same newest state) is not answered from the first one's cache
    lookup, conversations = _random_rules_and_states(9)
    states = conversations[0]
    smaller = dict(list(lookup.items())[: len(lookup) // 2])
    assert policy._get_possible_keys(lookup, states) == _rasa_get_possible_keys(policy, lookup, states)
    assert policy._get_possible_keys(smaller, states) == _rasa_get_possible_keys(policy, smaller, states)


# -- action_keepalive (bot/speedups/action_keepalive.py) ---------------------------------------------------

async def test_action_calls_reuse_one_connection_and_keep_rasas_answers(unused_tcp_port):
    from aiohttp import web
    from rasa.utils.endpoints import ClientResponseError, EndpointConfig

    from bot.speedups import action_keepalive

    assert action_keepalive.install()
    seen = []

    async def webhook(request):
        seen.append((request.transport.get_extra_info("peername")[1], request.headers.get("X-Token"),
                     request.query.get("a"), await request.json()))
        if (await request.json()).get("fail"):
            return web.json_response({"error": "no"}, status=404)
        return web.json_response({"events": [], "echo": (await request.json())["n"]})

    async def plain(request):
        return web.Response(text="not json")

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_post("/plain", plain)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        endpoint = EndpointConfig(url=f"http://127.0.0.1:{unused_tcp_port}/webhook", headers={"X-Token": "t"},
                                  params={"a": "1"})
        answers = [await endpoint.request(json={"n": n}, method="post", timeout=10) for n in range(3)]
        assert [a["echo"] for a in answers] == [0, 1, 2]
        assert {s[1:3] for s in seen} == {("t", "1")}  # endpoint headers and parameters as Rasa sends them
        assert len({s[0] for s in seen}) == 1, "each call opened a new connection"
        with pytest.raises(ClientResponseError) as err:
            await endpoint.request(json={"n": 9, "fail": True})
        assert err.value.status == 404
        plain_endpoint = EndpointConfig(url=f"http://127.0.0.1:{unused_tcp_port}")
        assert await plain_endpoint.request(subpath="plain", json={}) is None  # not JSON: None, as in Rasa
    finally:
        await runner.cleanup()
