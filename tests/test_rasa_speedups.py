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
