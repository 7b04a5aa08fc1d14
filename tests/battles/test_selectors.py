import pytest

from battles.selectors import battle_request_messages, battle_state
from tests.factories import cast_vote, make_battle, make_model

pytestmark = pytest.mark.django_db


def test_request_messages_carry_the_system_prompt_and_the_side_history_only():
    battle = make_battle(model_a=make_model(system_prompt="Be terse."), owner="s", prompt="Hi?")
    battle.turns.create(index=1, prompt="Second?")
    messages = battle_request_messages(battle, "a", turn_index=1)
    assert messages == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Answer **A**"},
        {"role": "user", "content": "Second?"},
    ]
    assert battle_request_messages(battle, "b", turn_index=0) == [{"role": "user", "content": "Hi?"}]


def test_battle_state_hides_names_until_the_vote():
    battle = make_battle(model_a=make_model("secret-alpha"), model_b=make_model("secret-beta"), owner="s")
    before = str(battle_state(battle))
    assert "secret-alpha" not in before and "secret-beta" not in before
    cast_vote(battle, owner="s", outcome="a")
    battle.refresh_from_db()
    after = battle_state(battle)
    assert (after["model_a"], after["model_b"]) == ("secret-alpha", "secret-beta")


@pytest.mark.django_db
def test_a_model_registered_in_this_process_is_looked_for_in_answers_at_once():
    """The detector was rebuilt once a minute: a model added in the admin could be drawn, and name itself,
    for up to a minute without the vote being left out."""
    from battles.selectors import leak_detector

    make_model("alpha")
    answer = "I am Zephyrine, a large language model."
    assert leak_detector().find(answer) is None
    make_model("zephyrine")
    assert leak_detector().find(answer) is not None
